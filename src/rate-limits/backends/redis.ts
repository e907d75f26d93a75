/**
 * The Redis rate-limiter backend, a peer of Python Dramatiq's
 * `dramatiq.rate_limits.backends.RedisBackend`: it runs the same commands on
 * the same keys, so limiters and barriers in Python and Node processes share
 * their counters.
 *
 * It talks to Redis through the library's built-in RESP2 client, so it
 * needs no other package. ioredis is needed only to pass an ioredis client
 * as `client`.
 */

import { checkBackendClient, type BackendRedisClient } from "../../brokers/redis/backend-client.js";
import { buildClientOptions, describeRedisClient } from "../../brokers/redis/client.js";
import type { RespClientOptions } from "../../brokers/redis/resp/options.js";
import { ConfigurationError, ConnectionClosedError, ConnectionFailedError, DramatiqError } from "../../errors.js";
import { getLogger, redactUrl } from "../../logger.js";
import {
  EVENT_VALUE,
  RateLimiterBackend,
  parseCounter,
  validateCounterUpdate,
  validateInteger,
  validateTtl,
  validateWaitTimeout,
} from "../backend.js";
import { RateLimiterBackendError } from "../errors.js";
import { RedisConnections } from "./redis-connections.js";

/** Options of RedisRateLimiterBackend. */
export interface RedisRateLimiterBackendOptions {
  /** Server URL: `redis://`, `rediss://` (TLS) or `unix://`. @defaultValue `"redis://127.0.0.1:6379/0"` */
  url?: string;
  /**
   * An existing ioredis client to use instead of `url` and the built-in
   * client, for ioredis features such as Sentinel. `close()` leaves it
   * open. Transactions and blocking waits run on duplicates of it, which
   * the backend owns.
   */
  client?: BackendRedisClient;
  /**
   * Options of the built-in client applied over those read from `url`.
   * They have the names and meanings of the ioredis options, but only a
   * subset is supported (see `RespClientOptions`), and any other option
   * raises ConfigurationError. Not allowed together with `client`.
   */
  redisOptions?: RespClientOptions;
  /**
   * Attempts of one optimistic transaction (`incr`, `decr`, `incrAndSum`)
   * before it fails with RateLimiterBackendError. An attempt is lost only
   * when another client changed a watched key meanwhile, so each lost
   * attempt means another client's update went through. @defaultValue `100`
   */
  maxTransactionAttempts?: number;
  /** Transactions that run at once, each on a connection of its own; more wait for a free one. @defaultValue `4` */
  maxTransactionClients?: number;
}

const DEFAULT_URL = "redis://127.0.0.1:6379/0";
const DEFAULT_MAX_TRANSACTION_ATTEMPTS = 100;
const DEFAULT_MAX_TRANSACTION_CLIENTS = 4;

/**
 * Stores limiter counters and barrier events in Redis with the commands of
 * Python Dramatiq 2.2:
 *
 * - `add`: `SET key value PX ttl NX`;
 * - `incr`, `decr`: `WATCH key; GET key; MULTI; SET key new PX ttl; EXEC`,
 *   started again from WATCH when EXEC aborts, and ended with UNWATCH,
 *   writing nothing, when the bound would be crossed;
 * - `incrAndSum`: the same with `WATCH key keys…` and an `MGET keys…` check;
 * - `wait`: `BRPOPLPUSH key key seconds`, which rotates the event onto
 *   itself, so the event stays for every other waiter;
 * - `waitNotify`: `MULTI; RPUSH key x; PEXPIRE key ttl; EXEC`.
 *
 * Python retries an aborted transaction without end; this backend gives up
 * after `maxTransactionAttempts`. Waits block in whole seconds: the timeout
 * is rounded down, and timeouts under 1000 ms are rejected, as Python does.
 *
 * The constructor never connects; the first operation does.
 */
export class RedisRateLimiterBackend extends RateLimiterBackend {
  /** The URL with any password replaced by `***`, for messages. */
  readonly displayUrl: string;
  readonly maxTransactionAttempts: number;

  private readonly logger = getLogger("melodramatiq.rate-limits.RedisRateLimiterBackend");
  private readonly connections: RedisConnections;

  constructor(options: RedisRateLimiterBackendOptions = {}) {
    super();
    const { url, client, redisOptions } = options;
    if (client !== undefined) {
      checkBackendClient(client, "RedisRateLimiterBackend");
    }
    if (client !== undefined && (url !== undefined || redisOptions !== undefined)) {
      throw new ConfigurationError(
        "RedisRateLimiterBackend takes either `client` or `url`/`redisOptions`, not both: configure the client you pass instead.",
      );
    }

    this.maxTransactionAttempts = positiveInteger("maxTransactionAttempts", options.maxTransactionAttempts ?? DEFAULT_MAX_TRANSACTION_ATTEMPTS);
    const maxTransactionClients = positiveInteger("maxTransactionClients", options.maxTransactionClients ?? DEFAULT_MAX_TRANSACTION_CLIENTS);

    let connectionOptions: RespClientOptions | undefined;
    if (client === undefined) {
      const chosenUrl = url ?? DEFAULT_URL;
      this.displayUrl = redactUrl(chosenUrl);
      connectionOptions = buildClientOptions(chosenUrl, redisOptions, {
        owner: "RedisRateLimiterBackend",
        displayUrl: this.displayUrl,
        logger: this.logger,
      });
    } else {
      this.displayUrl = describeRedisClient(client);
    }

    this.connections = new RedisConnections({
      connectionOptions,
      externalClient: client,
      maxTransactionClients,
      displayUrl: this.displayUrl,
      logger: this.logger,
    });
  }

  override async add(key: string, value: number, ttl: number): Promise<boolean> {
    validateInteger("value", value);
    validateTtl("TTL", ttl);
    const client = this.connections.sharedClient();
    try {
      return (await client.set(key, String(value), "PX", ttl, "NX")) === "OK";
    } catch (error) {
      throw this.commandFailure(client, "add", key, error);
    }
  }

  override async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "maximum", maximum, ttl);
    return this.updateCounter("increment", key, [key], ttl, async (client) => {
      const next = parseCounter(key, await client.get(key)) + amount;
      return next > maximum ? null : next;
    });
  }

  override async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "minimum", minimum, ttl);
    return this.updateCounter("decrement", key, [key], ttl, async (client) => {
      const next = parseCounter(key, await client.get(key)) - amount;
      return next < minimum ? null : next;
    });
  }

  override async incrAndSum(key: string, keys: readonly string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "maximum", maximum, ttl);
    return this.updateCounter("increment", key, [key, ...keys], ttl, async (client) => {
      const next = parseCounter(key, await client.get(key)) + amount;
      if (next > maximum) {
        return null;
      }

      // MGET reads `key` again when `keys` contains it, as Python's does. The
      // sum counts missing keys and keys of another type as 0, as MGET returns nil for them.
      const values = keys.length === 0 ? [] : await client.mget([...keys]);
      const total = values.reduce<number>((sum, stored, index) => sum + parseCounter(keys[index] ?? key, stored), amount);
      return total > maximum ? null : next;
    });
  }

  override async wait(key: string, timeout?: number): Promise<boolean> {
    validateWaitTimeout(timeout);
    // BRPOPLPUSH takes whole seconds, and 0 means no limit.
    const seconds = timeout === undefined ? 0 : Math.floor(timeout / 1000);

    return this.connections.withBlockingClient(async (client) => {
      try {
        return (await client.brpoplpush(key, key, seconds)) === EVENT_VALUE;
      } catch (error) {
        throw this.commandFailure(client, "wait for an event on", key, error);
      }
    });
  }

  override async waitNotify(key: string, ttl: number): Promise<void> {
    validateTtl("TTL", ttl);
    const client = this.connections.sharedClient();
    let replies: [Error | null, unknown][] | null;
    try {
      // One MULTI...EXEC on the shared connection: both clients send it as one unit, so no other command runs inside it.
      replies = await client
        .multi([
          ["rpush", key, EVENT_VALUE],
          ["pexpire", key, ttl],
        ])
        .exec();
    } catch (error) {
      throw this.commandFailure(client, "push an event onto", key, error);
    }

    // No key is watched on the shared connection, so EXEC returns nil only if something else broke the transaction.
    if (replies === null) {
      throw new RateLimiterBackendError(`Pushing an event onto key '${key}' on Redis at ${this.displayUrl} was aborted (EXEC returned nil); push it again.`, key);
    }
    throwFirstReplyError(replies, (error) => this.commandFailure(client, "push an event onto", key, error));
  }

  /**
   * Closes the connections this backend opened; waits and transactions in
   * progress reject with ConnectionClosedError. A client passed in `client`
   * stays open. The backend can be used again afterwards: it reconnects on demand.
   */
  override async close(): Promise<void> {
    await this.connections.close();
  }

  /**
   * Runs one optimistic transaction on `key`: WATCH `watched`, let `decide`
   * read and return the new value (or null to give up), then write it with
   * `MULTI; SET … PX ttl; EXEC`, starting over when EXEC aborts.
   */
  private async updateCounter(
    operation: "increment" | "decrement",
    key: string,
    watched: readonly string[],
    ttl: number,
    decide: (client: BackendRedisClient) => Promise<number | null>,
  ): Promise<boolean> {
    return this.connections.withTransactionClient(async (client) => {
      try {
        for (let attempt = 1; attempt <= this.maxTransactionAttempts; attempt += 1) {
          await client.watch(...watched);
          const next = await decide(client);
          if (next === null) {
            await client.unwatch();
            return false;
          }

          const replies = await client.multi([["set", key, String(next), "PX", ttl]]).exec();
          if (replies !== null) {
            throwFirstReplyError(replies, (error) => this.commandFailure(client, operation, key, error));
            return true;
          }
          this.logger.debug({ key, attempt }, `Transaction to ${operation} key '${key}' aborted because another client changed a watched key; retrying.`);
        }
      } catch (error) {
        throw this.commandFailure(client, operation, key, error);
      }

      throw new RateLimiterBackendError(
        `Failed to ${operation} key '${key}' on Redis at ${this.displayUrl}: other clients changed it during all ${this.maxTransactionAttempts} attempts. ` +
          "Raise maxTransactionAttempts, or spread the load over more keys.",
        key,
      );
    });
  }

  /** Turns what a command threw into a melodramatiq error; errors that already are one pass through. */
  private commandFailure(client: BackendRedisClient, operation: string, key: string, error: unknown): Error {
    if (error instanceof DramatiqError) {
      return error;
    }

    const reason = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.name === "ReplyError") {
      // The server replied, so the connection works and the key is wrong, e.g. WRONGTYPE for a list where a counter belongs.
      return new RateLimiterBackendError(
        `Redis at ${this.displayUrl} rejected the attempt to ${operation} key '${key}': ${reason}. ` +
          "Check that no other data uses this key, or give the limiter another key.",
        key,
        { cause: error },
      );
    }

    if (this.connections.wasClosedByUs(client)) {
      return new ConnectionClosedError(`The rate-limiter backend was closed while it tried to ${operation} key '${key}'.`, { cause: error });
    }
    return new ConnectionFailedError(
      `Failed to ${operation} key '${key}' on Redis at ${this.displayUrl}: ${reason}. ` +
        "Check that the server is running and that the URL and credentials are right.",
      { cause: error },
    );
  }
}

function throwFirstReplyError(replies: [Error | null, unknown][], wrap: (error: Error) => Error): void {
  const failed = replies.find(([error]) => error !== null)?.[0];
  if (failed !== undefined && failed !== null) {
    throw wrap(failed);
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigurationError(`Invalid ${name} ${String(value)}: it must be a whole number, 1 or more.`);
  }
  return value;
}

