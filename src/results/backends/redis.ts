/**
 * The Redis result backend, readable and writable by Python Dramatiq's
 * RedisBackend. A result is a Redis list holding exactly one element, the
 * encoded value, under a key that expires after the result TTL.
 *
 * It talks to Redis through the library's built-in RESP2 client, so it
 * needs no other package. ioredis is needed only to pass an ioredis client
 * as `client`.
 */

import { ConnectionHealthLog, checkBackendClient, closeClients, type BackendRedisClient } from "../../brokers/redis/backend-client.js";
import { BlockingClientPool } from "../../brokers/redis/blocking-clients.js";
import { buildClientOptions, describeRedisClient } from "../../brokers/redis/client.js";
import type { RespClientOptions } from "../../brokers/redis/resp/options.js";
import { RespClient } from "../../brokers/redis/resp/resp-client.js";
import { ConfigurationError, ConnectionFailedError } from "../../errors.js";
import { getLogger, redactUrl } from "../../logger.js";
import { ResultBackend, type ResultBackendOptions } from "../backend.js";
import { ResultError } from "../errors.js";

/** Options of RedisBackend. */
export interface RedisBackendOptions extends ResultBackendOptions {
  /** Server URL: `redis://`, `rediss://` (TLS) or `unix://`. @defaultValue `"redis://127.0.0.1:6379/0"` */
  url?: string;
  /**
   * An existing ioredis client to use instead of `url` and the built-in
   * client, for ioredis features such as Sentinel. `close()` leaves it
   * open. Blocking reads run on duplicates of it, which the backend owns.
   */
  client?: BackendRedisClient;
  /**
   * Options of the built-in client applied over those read from `url`.
   * They have the names and meanings of the ioredis options, but only a
   * subset is supported (see `RespClientOptions`), and any other option
   * raises ConfigurationError. Not allowed together with `client`.
   */
  redisOptions?: RespClientOptions;
}

const DEFAULT_URL = "redis://127.0.0.1:6379/0";

/**
 * Stores results in Redis with the commands Python Dramatiq uses:
 * `MULTI; DEL; LPUSH; PEXPIRE; EXEC` to store, `LINDEX key 0` to read, and
 * `BRPOPLPUSH key key <seconds>` to wait, which rotates the single element
 * onto itself so that other readers still find it.
 *
 * Blocking reads wait in whole seconds, as Python's do: the timeout is
 * rounded down, and a timeout under 1000 ms becomes one non-blocking
 * `RPOPLPUSH`, so it times out at once when nothing is stored. Each blocking
 * read in progress holds its own connection, because a blocking command
 * stalls every other command on its connection.
 *
 * The constructor never connects; the first read or write does.
 */
export class RedisBackend extends ResultBackend {
  /** The URL with any password replaced by `***`, for messages. */
  readonly displayUrl: string;

  private readonly logger = getLogger("melodramatiq.results.RedisBackend");
  private readonly connectionOptions: RespClientOptions | undefined;
  private readonly externalClient: BackendRedisClient | undefined;
  private client: BackendRedisClient | undefined;
  private readonly blockingClients: BlockingClientPool;
  private readonly healthLog: ConnectionHealthLog;

  constructor(options: RedisBackendOptions = {}) {
    super(options);
    const { url, client, redisOptions } = options;
    if (client !== undefined) {
      checkBackendClient(client, "RedisBackend");
    }
    if (client !== undefined && (url !== undefined || redisOptions !== undefined)) {
      throw new ConfigurationError("RedisBackend takes either `client` or `url`/`redisOptions`, not both: configure the client you pass instead.");
    }

    this.externalClient = client;
    if (client === undefined) {
      const chosenUrl = url ?? DEFAULT_URL;
      this.displayUrl = redactUrl(chosenUrl);
      this.connectionOptions = buildClientOptions(chosenUrl, redisOptions, { owner: "RedisBackend", displayUrl: this.displayUrl, logger: this.logger });
    } else {
      this.displayUrl = describeRedisClient(client);
      this.connectionOptions = undefined;
    }

    this.healthLog = new ConnectionHealthLog({ description: "result backend", displayUrl: this.displayUrl, logger: this.logger });
    this.blockingClients = new BlockingClientPool(() => {
      const blockingClient = this.getClient().duplicate();
      this.healthLog.watch(blockingClient);
      return blockingClient;
    });
  }

  protected override async readText(key: string): Promise<string | null> {
    try {
      return await this.getClient().lindex(key, 0);
    } catch (error) {
      throw this.commandFailure("read", key, error);
    }
  }

  protected override async waitForText(key: string, timeout: number): Promise<string | null> {
    // Python passes int(timeout / 1000) seconds, and BRPOPLPUSH with 0
    // seconds would block forever, so sub-second waits poll once instead.
    const seconds = Math.floor(timeout / 1000);
    if (seconds === 0) {
      try {
        return await this.getClient().rpoplpush(key, key);
      } catch (error) {
        throw this.commandFailure("read", key, error);
      }
    }

    return this.blockingClients.run(async (client) => {
      try {
        return await client.brpoplpush(key, key, seconds);
      } catch (error) {
        throw this.commandFailure("wait for", key, error);
      }
    });
  }

  protected override describeWait(timeout: number): string {
    const seconds = Math.floor(timeout / 1000);
    if (seconds === 0) {
      return `the timeout of ${timeout} ms, which Redis waits in whole seconds, so it checked once without waiting`;
    }
    return `the timeout of ${timeout} ms, waited as ${seconds} s because Redis waits in whole seconds`;
  }

  protected override async writeText(key: string, text: string, ttl: number): Promise<void> {
    let replies: [Error | null, unknown][] | null;
    try {
      // One MULTI...EXEC on the shared connection: both clients send it as one unit, so no other command runs inside it.
      replies = await this.getClient()
        .multi([
          ["del", key],
          ["lpush", key, text],
          ["pexpire", key, ttl],
        ])
        .exec();
    } catch (error) {
      throw this.commandFailure("store", key, error);
    }

    if (replies === null) {
      throw new ResultError(`Storing the result under key '${key}' on Redis at ${this.displayUrl} was aborted (EXEC returned nil); store it again.`);
    }
    const failed = replies.find(([error]) => error !== null)?.[0];
    if (failed !== undefined && failed !== null) {
      throw this.commandFailure("store", key, failed);
    }
  }

  /**
   * Closes the connections this backend opened and stops blocking reads in
   * progress (they reject). A client passed in `client` stays open. The
   * backend can be used again afterwards: it reconnects on demand.
   */
  override async close(): Promise<void> {
    const { busy, idle } = this.blockingClients.detach();
    if (this.client !== undefined && this.externalClient === undefined) {
      idle.push(this.client);
    }
    this.client = undefined;

    await closeClients(idle, busy);
  }

  private getClient(): BackendRedisClient {
    if (this.client !== undefined) {
      return this.client;
    }

    let client = this.externalClient;
    if (client === undefined) {
      client = new RespClient(this.connectionOptions ?? {});
      this.healthLog.watch(client);
    }
    this.client = client;
    return client;
  }

  private commandFailure(operation: "read" | "wait for" | "store", key: string, error: unknown): Error {
    const reason = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.name === "ReplyError") {
      // The server replied, so the connection works and the key is wrong, e.g. WRONGTYPE for a key that is not a list.
      return new ResultError(
        `Redis at ${this.displayUrl} rejected the attempt to ${operation} the result under key '${key}': ${reason}. ` +
          "Check that no other data uses this key, or pick another namespace.",
        { cause: error },
      );
    }

    return new ConnectionFailedError(
      `Failed to ${operation} the result under key '${key}' on Redis at ${this.displayUrl}: ${reason}. ` +
        "Check that the server is running and that the URL and credentials are right.",
      { cause: error },
    );
  }
}
