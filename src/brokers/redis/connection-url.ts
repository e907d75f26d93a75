/**
 * Redis connection URLs, in the forms redis-py's `from_url` accepts and
 * Python Dramatiq users already have in their configuration:
 *
 * - `redis://[[username]:[password]@]host[:port][/db]`
 * - `rediss://…` (the same over TLS)
 * - `unix://[[username]:[password]@]/path/to/redis.sock[?db=N]`
 *
 * The database may also be given as the query parameter `db`. With
 * `rediss://`, `ssl_cert_reqs=none` turns certificate verification off.
 * Other query parameters are returned as ignored, so the broker can warn.
 */

import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";

import { ConfigurationError } from "../../errors.js";
import { redactUrl } from "../../logger.js";

/** Connection options a URL can set; the names are those of ioredis and of the built-in client alike. */
export interface RedisUrlOptions {
  host?: string;
  port?: number;
  path?: string;
  username?: string;
  password?: string;
  db?: number;
  tls?: TlsConnectionOptions;
}

/** Connection options read from a URL, plus the query parameters that were not understood. */
export interface ParsedRedisUrl {
  readonly options: RedisUrlOptions;
  readonly ignoredParameters: readonly string[];
}

const DEFAULT_PORT = 6379;
const DEFAULT_HOST = "localhost";

/** Parses a `redis://`, `rediss://` or `unix://` URL into connection options. */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  if (typeof url !== "string") {
    throw new ConfigurationError(`Invalid Redis URL ${String(url)}: it must be a string such as "redis://127.0.0.1:6379/0".`);
  }

  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "unix") {
    return parseUnixUrl(url);
  }
  if (scheme === "redis" || scheme === "rediss") {
    return parseTcpUrl(url, scheme === "rediss");
  }

  throw invalidUrl(url, "the scheme must be redis://, rediss:// or unix://");
}

function parseTcpUrl(url: string, tls: boolean): ParsedRedisUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Node's URL error keeps the whole input, password included, so it is not kept as the cause.
    throw invalidUrl(url, "it is not a well-formed URL");
  }

  const options: RedisUrlOptions = {
    host: stripBrackets(parsed.hostname) || DEFAULT_HOST,
    port: parsePort(url, parsed.port),
  };
  addCredentials(options, url, parsed.username, parsed.password);

  const pathDb = parsed.pathname.replace(/^\/+/, "");
  if (pathDb !== "") {
    options.db = parseDb(url, pathDb);
  }

  const ignored = readQuery(url, parsed.searchParams, options);
  if (tls) {
    options.tls = tlsOptions(url, parsed.searchParams);
  }

  return { options, ignoredParameters: ignored };
}

/** `unix://` URLs carry a path, not a host, so WHATWG URL parsing does not apply to them. */
function parseUnixUrl(url: string): ParsedRedisUrl {
  const rest = url.slice("unix://".length);
  const queryStart = rest.indexOf("?");
  const beforeQuery = queryStart === -1 ? rest : rest.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? "" : rest.slice(queryStart + 1));

  const slash = beforeQuery.indexOf("/");
  const at = beforeQuery.lastIndexOf("@", slash === -1 ? undefined : slash);
  const userInfo = at === -1 ? "" : beforeQuery.slice(0, at);
  const path = at === -1 ? beforeQuery : beforeQuery.slice(at + 1);
  if (!path.startsWith("/")) {
    throw invalidUrl(url, "a unix:// URL needs an absolute socket path, as in unix:///run/redis.sock?db=0");
  }

  const options: RedisUrlOptions = { path: decodePart(url, path) };
  const colon = userInfo.indexOf(":");
  const username = colon === -1 ? userInfo : userInfo.slice(0, colon);
  const password = colon === -1 ? "" : userInfo.slice(colon + 1);
  addCredentials(options, url, username, password);

  return { options, ignoredParameters: readQuery(url, query, options) };
}

function addCredentials(options: RedisUrlOptions, url: string, username: string, password: string): void {
  if (username !== "") {
    options.username = decodePart(url, username);
  }
  if (password !== "") {
    options.password = decodePart(url, password);
  }
}

/** Applies `db` and returns the names of the parameters this parser does not use. */
function readQuery(url: string, query: URLSearchParams, options: RedisUrlOptions): string[] {
  const ignored: string[] = [];
  for (const [name, value] of query) {
    if (name === "db") {
      options.db = parseDb(url, value);
    } else if (name !== "ssl_cert_reqs") {
      ignored.push(name);
    }
  }
  return ignored;
}

function tlsOptions(url: string, query: URLSearchParams): TlsConnectionOptions {
  const certReqs = query.get("ssl_cert_reqs");
  if (certReqs === null || certReqs === "required") {
    return {};
  }
  if (certReqs === "none" || certReqs === "optional") {
    // Node's TLS has no "optional" mode: a certificate is either checked or not.
    return { rejectUnauthorized: false };
  }

  throw invalidUrl(url, `ssl_cert_reqs=${certReqs} is not one of none, optional, required`);
}

function parsePort(url: string, port: string): number {
  if (port === "") {
    return DEFAULT_PORT;
  }

  const value = Number(port);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalidUrl(url, `port ${port} is not between 1 and 65535`);
  }
  return value;
}

function parseDb(url: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw invalidUrl(url, `the database ${JSON.stringify(text)} is not a whole number`);
  }
  return Number(text);
}

function stripBrackets(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

function decodePart(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw invalidUrl(url, "it contains an invalid percent-encoding", error);
  }
}

function invalidUrl(url: string, reason: string, cause?: unknown): ConfigurationError {
  // The URL may carry a password, so only its redacted form appears in the message.
  return new ConfigurationError(
    `Invalid Redis URL ${JSON.stringify(redactUrl(url))}: ${reason}. ` +
      "Use redis://[user:password@]host[:port][/db], rediss://… for TLS, or unix:///path/to/socket[?db=N].",
    cause === undefined ? undefined : { cause },
  );
}
