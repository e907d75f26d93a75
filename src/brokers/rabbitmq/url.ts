/**
 * AMQP URLs: splitting a fail-over list, and mapping one URL to the connect
 * and socket options of amqplib. URLs follow the form Python Dramatiq's
 * client (pika) accepts: `amqp[s]://user:password@host:port/vhost?heartbeat=5`,
 * with a percent-encoded vhost (`%2F` is `/`) and guest/guest as default
 * credentials.
 */

import { isIP } from "node:net";

import type { Options, SocketOptions } from "amqplib";

import { ConfigurationError } from "../../errors.js";
import { redactUrl } from "../../logger.js";

/** URL used when a broker is created without one. */
export const DEFAULT_URL = "amqp://127.0.0.1:5672";

/**
 * Milliseconds a TCP connect plus AMQP handshake may take before the attempt
 * fails, unless `socketOptions.timeout` or the URL's `socket_timeout` sets
 * another. Without a limit, a host that accepts TCP connections but never
 * replies to the AMQP handshake would hang `connect()` forever. pika 1.2's
 * default socket timeout is also 10 s.
 */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** One server to connect to, as amqplib needs it. */
export interface AmqpEndpoint {
  /** The URL as configured. It may contain a password: log `redactedUrl` instead. */
  readonly url: string;
  /** The URL with its password replaced by `***`. */
  readonly redactedUrl: string;
  /** Connection parameters for amqplib's `connect()`. */
  readonly connect: Options.Connect;
  /** Socket and TLS options for amqplib's `connect()`. */
  readonly socket: SocketOptions;
  /** Query options that pika reads but this broker ignores (e.g. `retry_delay`). */
  readonly ignoredQueryOptions: readonly string[];
}

/** Broker options that apply to every URL. */
export interface EndpointOptions {
  /** AMQP heartbeat in seconds; overrides the URL's `heartbeat`. */
  heartbeat?: number;
  /** Socket and TLS options passed to amqplib (ca, cert, key, servername, timeout…). */
  socketOptions?: Record<string, unknown>;
  /** Name RabbitMQ shows for the connection (client property `connection_name`). */
  connectionName?: string;
}

/** Query options read from the URL, by pika's name, with amqplib's camelCase names accepted too. */
const integerQueryOptions: Record<string, "heartbeat" | "channelMax" | "frameMax" | "socketTimeout"> = {
  heartbeat: "heartbeat",
  channel_max: "channelMax",
  channelMax: "channelMax",
  frame_max: "frameMax",
  frameMax: "frameMax",
  socket_timeout: "socketTimeout",
};

/**
 * Splits the `url` broker option into single URLs: an array is taken as is,
 * a string is split at `;`. Throws a ConfigurationError for an empty list.
 */
export function splitUrls(url: string | readonly string[]): string[] {
  const parts = typeof url === "string" ? url.split(";") : [...url];
  const urls = parts.map((part) => part.trim()).filter((part) => part !== "");
  if (urls.length === 0) {
    throw new ConfigurationError(`Invalid RabbitMQ url ${JSON.stringify(url)}: give at least one amqp:// or amqps:// URL.`);
  }
  return urls;
}

/**
 * Parses one AMQP URL into amqplib's connect and socket options. Throws a
 * ConfigurationError, showing the URL without its password, for a URL that
 * does not parse, a scheme other than amqp/amqps or an invalid query value.
 */
export function parseAmqpUrl(url: string, options: EndpointOptions = {}): AmqpEndpoint {
  const redactedUrl = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigurationError(`Invalid RabbitMQ URL ${JSON.stringify(redactedUrl)}: it does not parse as a URL.`, { cause: error });
  }

  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new ConfigurationError(
      `Invalid RabbitMQ URL ${JSON.stringify(redactedUrl)}: the scheme must be amqp:// or amqps://, not ${parsed.protocol}//.`,
    );
  }

  const tls = parsed.protocol === "amqps:";
  const hostname = parsed.hostname.replace(/^\[|\]$/g, "") || "localhost";
  const defaultPort = tls ? 5671 : 5672;
  const port = parsed.port === "" ? defaultPort : Number(parsed.port);
  const query = readQuery(parsed, redactedUrl);
  const heartbeat = options.heartbeat ?? query.heartbeat;

  const connect: Options.Connect = {
    protocol: tls ? "amqps" : "amqp",
    hostname,
    port,
    vhost: readVhost(parsed, redactedUrl),
    ...readCredentials(parsed, redactedUrl),
    ...(heartbeat === undefined ? {} : { heartbeat }),
    ...(query.channelMax === undefined ? {} : { channelMax: query.channelMax }),
    ...(query.frameMax === undefined ? {} : { frameMax: query.frameMax }),
    ...(query.locale === undefined ? {} : { locale: query.locale }),
  };

  const socket: SocketOptions = { ...options.socketOptions };
  socket.timeout ??= query.socketTimeout === undefined ? DEFAULT_CONNECT_TIMEOUT : query.socketTimeout * 1000;
  if (tls && socket.servername === undefined && isIP(hostname) === 0) {
    // TLS SNI and certificate checks need the host name; SNI forbids IP addresses.
    socket.servername = hostname;
  }
  if (options.connectionName !== undefined) {
    socket.clientProperties = { connection_name: options.connectionName, ...socket.clientProperties };
  }

  return { url, redactedUrl, connect, socket, ignoredQueryOptions: query.ignored };
}

interface QueryValues {
  heartbeat?: number;
  channelMax?: number;
  frameMax?: number;
  socketTimeout?: number;
  locale?: string;
  ignored: string[];
}

function readQuery(parsed: URL, redactedUrl: string): QueryValues {
  const values: QueryValues = { ignored: [] };
  for (const [name, text] of parsed.searchParams) {
    const target = integerQueryOptions[name];
    if (target !== undefined) {
      values[target] = readNonNegative(name, text, redactedUrl);
    } else if (name === "locale") {
      values.locale = text;
    } else {
      values.ignored.push(name);
    }
  }
  return values;
}

function readNonNegative(name: string, text: string, redactedUrl: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new ConfigurationError(
      `Invalid query option ${name}=${JSON.stringify(text)} in RabbitMQ URL ${JSON.stringify(redactedUrl)}: it must be a number, 0 or more.`,
    );
  }
  return value;
}

/** Returns the vhost: the URL path without its leading slash, percent-decoded, or `/` for an empty path. */
function readVhost(parsed: URL, redactedUrl: string): string {
  const path = parsed.pathname.replace(/^\//, "");
  if (path === "") {
    return "/";
  }
  return decode(path, "vhost", redactedUrl);
}

/** guest/guest when the URL names no user, as pika and amqplib both default. */
function readCredentials(parsed: URL, redactedUrl: string): { username: string; password: string } {
  if (parsed.username === "" && parsed.password === "") {
    return { username: "guest", password: "guest" };
  }
  return { username: decode(parsed.username, "user name", redactedUrl), password: decode(parsed.password, "password", redactedUrl) };
}

function decode(text: string, part: string, redactedUrl: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new ConfigurationError(
      `Invalid RabbitMQ URL ${JSON.stringify(redactedUrl)}: the ${part} has an invalid percent-encoding.`,
      { cause: error },
    );
  }
}
