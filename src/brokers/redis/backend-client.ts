/**
 * The Redis client surface of the Redis results backend and the Redis
 * rate-limiter backend. The built-in RESP2 client and an ioredis client
 * both provide it, so the backends create a built-in client from a URL and
 * never load ioredis. An application that needs ioredis features passes
 * its own ioredis client instead.
 */

import { dropClient, quitClient } from "./client.js";
import type { RedisAddress } from "./resp/options.js";
import type { ExecResult, TransactionCommand } from "./resp/transaction.js";
import { ConfigurationError } from "../../errors.js";
import type { Logger } from "../../logger.js";

/** Options of a dedicated connection opened with `duplicate()`, named as in ioredis and read by the built-in client too. */
export interface DedicatedConnectionOptions {
  readonly lazyConnect?: boolean;
  readonly enableOfflineQueue?: boolean;
  readonly autoResendUnfulfilledCommands?: boolean;
  readonly retryStrategy?: (attempt: number) => number | null;
}

/** The client members the Redis results and rate-limiter backends use. ioredis clients have them too. */
export interface BackendRedisClient {
  readonly status: string;
  readonly options: RedisAddress;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  /** Opens another connection with the same options, for blocking commands and WATCH transactions. */
  duplicate(overrides?: DedicatedConnectionOptions): BackendRedisClient;
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<(string | null)[]>;
  set(key: string, value: string, px: "PX", milliseconds: number, nx: "NX"): Promise<"OK" | null>;
  watch(...keys: string[]): Promise<unknown>;
  unwatch(): Promise<unknown>;
  lindex(key: string, index: number): Promise<string | null>;
  rpoplpush(source: string, destination: string): Promise<string | null>;
  brpoplpush(source: string, destination: string, timeout: number): Promise<string | null>;
  /** Returns a MULTI/EXEC transaction of `commands`. Command names must be lower case, because ioredis calls its method of that name. */
  multi(commands: TransactionCommand[]): { exec(): Promise<ExecResult> };
}

/** Throws ConfigurationError unless `client` has the members of a client that the backends call. */
export function checkBackendClient(client: unknown, owner: string): asserts client is BackendRedisClient {
  const candidate = client as Partial<Record<keyof BackendRedisClient, unknown>> | null;
  const valid =
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.options === "object" &&
    typeof candidate.duplicate === "function" &&
    typeof candidate.multi === "function" &&
    typeof candidate.on === "function";
  if (!valid) {
    throw new ConfigurationError(
      `Invalid ${owner} option \`client\`: expected an ioredis client (new Redis(...)); pass \`url\` or \`redisOptions\` to have the backend create a client.`,
    );
  }
}

/**
 * Closes a backend's connections: sends QUIT on the `idle` ones, then cuts
 * the `busy` ones, whose commands reject, after calling `onCut` with each.
 * A busy connection is cut rather than sent QUIT, because a blocked one
 * would reply only after its wait ends. It is cut last, so its commands
 * reject no sooner than the event-loop turn in which this call resolves,
 * and a caller can await the backend's `close()` before it handles them
 * without an unhandled rejection.
 */
export async function closeClients(
  idle: readonly BackendRedisClient[],
  busy: readonly BackendRedisClient[],
  onCut: (client: BackendRedisClient) => void = () => undefined,
): Promise<void> {
  await Promise.all(idle.map((client) => quitClient(client)));
  for (const client of busy) {
    onCut(client);
    dropClient(client);
  }
}

/** Settings of a ConnectionHealthLog. */
export interface ConnectionHealthLogOptions {
  /** The backend in log lines, as in "result backend". */
  readonly description: string;
  readonly displayUrl: string;
  readonly logger: Logger;
  /** Returns true for a client whose errors are expected, such as one that `close()` cut. */
  readonly ignoreErrorsOf?: (client: BackendRedisClient) => boolean;
}

/**
 * Logs the first connection failure of a backend's clients as a warning,
 * and the next ready connection after it, so an outage gives two lines
 * however many clients and reconnection attempts it involves.
 */
export class ConnectionHealthLog {
  private healthy = true;

  constructor(private readonly options: ConnectionHealthLogOptions) {}

  /** Adds the `error` and `ready` listeners. They are needed even without a log line, because an ioredis client with no error listener prints its errors to the console. */
  watch(client: BackendRedisClient): void {
    const { description, displayUrl, logger, ignoreErrorsOf } = this.options;
    client.on("error", (error: Error) => {
      if (this.healthy && ignoreErrorsOf?.(client) !== true) {
        this.healthy = false;
        logger.warn({ err: error, url: displayUrl }, `Connection to the ${description} at ${displayUrl} failed: ${error.message}. Reconnecting.`);
      }
    });
    client.on("ready", () => {
      if (!this.healthy) {
        this.healthy = true;
        logger.info({ url: displayUrl }, `Reconnected to the ${description} at ${displayUrl}.`);
      }
    });
  }
}
