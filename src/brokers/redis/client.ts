/**
 * Redis client helpers. The broker talks to Redis through the
 * `BrokerRedisClient` surface, which both the built-in RESP2 client and an
 * ioredis client provide. The Redis results and rate-limiter backends use
 * the surface in `backend-client.ts`.
 */

import { parseRedisUrl } from "./connection-url.js";
import type { CommandArgument } from "./resp/encode.js";
import { checkRespClientOptions, describeAddress, type RedisAddress, type RespClientOptions } from "./resp/options.js";
import { RespClient } from "./resp/resp-client.js";
import type { Logger } from "../../logger.js";

/** The client members the Redis broker, its wake-up channel and its scripts use; ioredis clients have them too. */
export interface BrokerRedisClient {
  readonly status: string;
  readonly options: RedisAddress;
  /** The socket of the current connection, which scripts.ts corks to batch the writes of one tick. */
  readonly stream: { readonly writable: boolean; cork(): void; uncork(): void } | undefined | null;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
  off(event: "ready", listener: () => void): unknown;
  connect(): Promise<void>;
  ping(): Promise<string>;
  quit(): Promise<unknown>;
  disconnect(): void;
  duplicate(): BrokerRedisClient;
  callBuffer(command: string, args: CommandArgument[]): Promise<unknown>;
  zcard(key: string): Promise<number>;
  hlen(key: string): Promise<number>;
  zrangebyscore(key: string, min: number | string, max: number | string, limit: "LIMIT", offset: number, count: number): Promise<string[]>;
  hgetBuffer(key: string, field: string): Promise<Buffer | null>;
  smembers(key: string): Promise<string[]>;
  zadd(key: string, score: string, member: string): Promise<unknown>;
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
}

const FIRST_RECONNECT_DELAY = 100;
const MAX_RECONNECT_DELAY = 3000;

/**
 * Returns the milliseconds to wait before reconnection attempt `attempt`
 * (counted from 1): 100 ms, doubling up to 3 s. The `retryStrategy` of every
 * Redis connection the library opens.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(FIRST_RECONNECT_DELAY * 2 ** Math.min(attempt - 1, 10), MAX_RECONNECT_DELAY);
}

/** Creates the broker's built-in client, which does not load ioredis. */
export function createBrokerClient(options: RespClientOptions): RespClient {
  return new RespClient(options);
}

/** Requests wait through this many reconnection attempts before they fail, so a call during an outage fails in seconds. */
const MAX_RETRIES_PER_REQUEST = 3;

/** The component whose client options `buildClientOptions` builds, for messages. */
export interface ClientOptionsSource {
  /** The class, as in "RedisBroker" or "RedisBackend". */
  readonly owner: string;
  /** The URL with any password hidden. */
  readonly displayUrl: string;
  readonly logger: Logger;
}

/**
 * Returns the options of the built-in client that a broker or backend
 * creates: those read from `url`, then `extra` (the `redisOptions` option)
 * over them, with a `tls` object merged into the one `rediss://` implies.
 * Throws ConfigurationError naming an option of `extra` that the built-in
 * client does not support.
 */
export function buildClientOptions(url: string, extra: RespClientOptions | undefined, source: ClientOptionsSource): RespClientOptions {
  if (extra !== undefined) {
    checkRespClientOptions(extra, `${source.owner} option redisOptions`);
  }
  const parsed = parseRedisUrl(url);
  if (parsed.ignoredParameters.length > 0) {
    source.logger.warn(
      { url: source.displayUrl, parameters: parsed.ignoredParameters },
      `Ignoring Redis URL parameters ${parsed.ignoredParameters.join(", ")}: only db and ssl_cert_reqs are read; pass other settings in redisOptions.`,
    );
  }

  const options: RespClientOptions = {
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    retryStrategy: reconnectDelay,
    ...parsed.options,
    ...extra,
    // Constructing a broker or backend must never connect: both are built at import time, when actors are declared.
    lazyConnect: true,
  };

  const urlTls = parsed.options.tls;
  const extraTls = extra?.tls;
  if (urlTls !== undefined && typeof urlTls === "object" && typeof extraTls === "object") {
    options.tls = { ...urlTls, ...extraTls };
  }
  return options;
}

/** Returns the address of a client for log lines and errors, without credentials. */
export function describeRedisClient(client: { readonly options: RedisAddress }): string {
  return describeAddress(client.options);
}

/** The members of a client, the built-in one or ioredis, that closing it uses. */
export interface ClosableClient {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Milliseconds QUIT may take before the connection is dropped, so closing ends even when the server stopped replying. */
const QUIT_TIMEOUT = 2000;

/**
 * Closes a connection with QUIT when it is up, else drops it at once
 * instead of waiting for a reconnection. A QUIT without a reply within
 * QUIT_TIMEOUT also drops the connection.
 */
export async function quitClient(client: ClosableClient): Promise<void> {
  if (client.status !== "ready") {
    dropClient(client);
    return;
  }

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => {
      resolve("timeout");
    }, QUIT_TIMEOUT);
  });
  try {
    const outcome = await Promise.race([client.quit(), timedOut]);
    if (outcome === "timeout") {
      dropClient(client);
    }
  } catch {
    dropClient(client);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Disconnects a client unless it has ended already. On an ended client,
 * ioredis 6.1 starts a 2-second timer to destroy a socket that is already
 * gone, which keeps the process alive that long.
 */
export function dropClient(client: ClosableClient): void {
  if (client.status !== "end") {
    client.disconnect();
  }
}
