/**
 * The Redis result backend, readable and writable by Python Dramatiq's
 * RedisBackend. A result is a Redis list holding exactly one element, the
 * encoded value, under a key that expires after the result TTL.
 *
 * This entry point is the only module of melodramatiq/results that loads
 * ioredis, so apps that keep results elsewhere do not need it installed.
 */

import type { Redis, RedisOptions } from "ioredis";

import { createRedisClient, describeRedisClient, reconnectDelay } from "../../brokers/redis/client.js";
import { parseRedisUrl } from "../../brokers/redis/connection-url.js";
import { ConfigurationError, ConnectionFailedError } from "../../errors.js";
import { getLogger, redactUrl } from "../../logger.js";
import { ResultBackend, type ResultBackendOptions } from "../backend.js";
import { ResultError } from "../errors.js";

/** Options of RedisBackend. */
export interface RedisBackendOptions extends ResultBackendOptions {
  /** Server URL: `redis://`, `rediss://` (TLS) or `unix://`. @defaultValue `"redis://127.0.0.1:6379/0"` */
  url?: string;
  /**
   * An existing ioredis client to use instead of `url`. `close()` leaves it
   * open. Blocking reads run on duplicates of it, which the backend owns.
   */
  client?: Redis;
  /** Extra ioredis options applied over those read from `url`. Not allowed together with `client`. */
  redisOptions?: RedisOptions;
}

const DEFAULT_URL = "redis://127.0.0.1:6379/0";
/** Requests wait through this many reconnection attempts before they fail, so a read during an outage fails in seconds. */
const MAX_RETRIES_PER_REQUEST = 3;
/** Idle connections for blocking reads kept open for reuse; more are opened while more reads block at once. */
const MAX_IDLE_BLOCKING_CLIENTS = 4;

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
  private readonly connectionOptions: RedisOptions | undefined;
  private readonly externalClient: Redis | undefined;
  private client: Redis | undefined;
  private readonly idleBlockingClients: Redis[] = [];
  private readonly busyBlockingClients = new Set<Redis>();
  private connectionHealthy = true;

  constructor(options: RedisBackendOptions = {}) {
    super(options);
    const { url, client, redisOptions } = options;
    if (client !== undefined && (url !== undefined || redisOptions !== undefined)) {
      throw new ConfigurationError("RedisBackend takes either `client` or `url`/`redisOptions`, not both: configure the client you pass instead.");
    }

    this.externalClient = client;
    if (client === undefined) {
      const chosenUrl = url ?? DEFAULT_URL;
      this.displayUrl = redactUrl(chosenUrl);
      this.connectionOptions = this.buildConnectionOptions(chosenUrl, redisOptions);
    } else {
      this.displayUrl = describeRedisClient(client);
      this.connectionOptions = undefined;
    }
  }

  private buildConnectionOptions(url: string, extra: RedisOptions | undefined): RedisOptions {
    const parsed = parseRedisUrl(url);
    if (parsed.ignoredParameters.length > 0) {
      this.logger.warn(
        { url: this.displayUrl, parameters: parsed.ignoredParameters },
        `Ignoring Redis URL parameters ${parsed.ignoredParameters.join(", ")}: only db and ssl_cert_reqs are read; pass other settings in redisOptions.`,
      );
    }

    return {
      maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
      retryStrategy: reconnectDelay,
      ...parsed.options,
      ...extra,
      // Constructing a backend must never connect: it is built at import time.
      lazyConnect: true,
    };
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

    const blockingClient = this.acquireBlockingClient();
    let reusable = false;
    try {
      const text = await blockingClient.brpoplpush(key, key, seconds);
      reusable = true;
      return text;
    } catch (error) {
      throw this.commandFailure("wait for", key, error);
    } finally {
      this.releaseBlockingClient(blockingClient, reusable);
    }
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
      replies = await this.getClient().multi().del(key).lpush(key, text).pexpire(key, ttl).exec();
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
    // A blocked connection would reply to QUIT only after its wait ends, so it is cut at once.
    for (const client of this.busyBlockingClients) {
      client.disconnect();
    }
    this.busyBlockingClients.clear();

    const idle = [...this.idleBlockingClients];
    this.idleBlockingClients.length = 0;
    if (this.client !== undefined && this.externalClient === undefined) {
      idle.push(this.client);
    }
    this.client = undefined;

    await Promise.all(idle.map((client) => quit(client)));
  }

  private getClient(): Redis {
    if (this.client !== undefined) {
      return this.client;
    }

    const client = this.externalClient ?? createRedisClient(this.connectionOptions ?? {}, "RedisBackend");
    if (this.externalClient === undefined) {
      this.watchConnection(client);
    }
    this.client = client;
    return client;
  }

  /** Logs a lost and a regained connection once each; without an error listener ioredis prints to the console. */
  private watchConnection(client: Redis): void {
    client.on("error", (error: Error) => {
      if (this.connectionHealthy) {
        this.connectionHealthy = false;
        this.logger.warn({ err: error, url: this.displayUrl }, `Connection to the result backend at ${this.displayUrl} failed: ${error.message}. Reconnecting.`);
      }
    });
    client.on("ready", () => {
      if (!this.connectionHealthy) {
        this.connectionHealthy = true;
        this.logger.info({ url: this.displayUrl }, `Reconnected to the result backend at ${this.displayUrl}.`);
      }
    });
  }

  private acquireBlockingClient(): Redis {
    let client = this.idleBlockingClients.pop();
    if (client === undefined) {
      client = this.getClient().duplicate();
      this.watchConnection(client);
    }

    this.busyBlockingClients.add(client);
    return client;
  }

  private releaseBlockingClient(client: Redis, reusable: boolean): void {
    if (!this.busyBlockingClients.delete(client)) {
      // close() took it over already.
      return;
    }

    if (reusable && this.idleBlockingClients.length < MAX_IDLE_BLOCKING_CLIENTS) {
      this.idleBlockingClients.push(client);
      return;
    }
    void quit(client);
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

/** Closes a connection with QUIT when it is up, else disconnects at once instead of waiting for a reconnection. */
async function quit(client: Redis): Promise<void> {
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }

  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

