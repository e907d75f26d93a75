/**
 * The connections of one Redis rate-limiter backend:
 *
 * - a shared connection for single commands (`SET NX`, and the
 *   `MULTI; RPUSH; PEXPIRE; EXEC` of a notification, which ioredis writes in
 *   one piece, so concurrent callers cannot interleave);
 * - a small pool for optimistic transactions, because WATCH belongs to a
 *   connection: two transactions on one connection would share their watched
 *   keys, and the first EXEC would unwatch the second one's keys, letting a
 *   lost update through;
 * - one connection per blocking wait in progress, because BRPOPLPUSH stalls
 *   every later command on its connection.
 *
 * Nothing connects before the first command.
 */

import type { Redis, RedisOptions } from "ioredis";

import { createRedisClient } from "../../brokers/redis/client.js";
import { ConnectionClosedError, ConnectionFailedError } from "../../errors.js";
import type { Logger } from "../../logger.js";

/** Idle connections for blocking waits kept open for reuse; more are opened while more waits block at once. */
const MAX_IDLE_BLOCKING_CLIENTS = 4;

/**
 * Settings of transaction connections. A transaction connection must never
 * replay commands on a new connection: the WATCH would not be there, and a
 * replayed MULTI/EXEC would write without the check. So it fails commands
 * instead of queueing or resending them, and it is dropped instead of
 * reconnecting. The pool opens a fresh one for the next transaction.
 */
const TRANSACTION_CLIENT_OVERRIDES = {
  lazyConnect: true,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  retryStrategy: () => null,
} satisfies Partial<RedisOptions>;

/** Backend settings that RedisConnections needs. */
export interface RedisConnectionsOptions {
  /** Options of the shared connection, or undefined when `externalClient` is given. */
  readonly connectionOptions: RedisOptions | undefined;
  /** A client the application passed in; it is used but never closed. */
  readonly externalClient: Redis | undefined;
  /** Transactions that run at once; more wait for a free connection. */
  readonly maxTransactionClients: number;
  /** The server URL with its password hidden, for log lines. */
  readonly displayUrl: string;
  readonly logger: Logger;
}

export class RedisConnections {
  private shared: Redis | undefined;
  private readonly idleTransactionClients: Redis[] = [];
  private readonly busyTransactionClients = new Set<Redis>();
  private readonly transactionQueue: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly idleBlockingClients: Redis[] = [];
  private readonly busyBlockingClients = new Set<Redis>();
  /** Connections that `close()` cut, so that their failures read as a close, not an outage. */
  private readonly closedByUs = new WeakSet<Redis>();
  private connectionHealthy = true;

  constructor(private readonly options: RedisConnectionsOptions) {}

  /** Returns the shared connection, creating it on first use. */
  sharedClient(): Redis {
    if (this.shared !== undefined) {
      return this.shared;
    }

    const client = this.options.externalClient ?? createRedisClient(this.options.connectionOptions ?? {}, "RedisRateLimiterBackend");
    if (this.options.externalClient === undefined) {
      this.watchConnection(client);
    }
    this.shared = client;
    return client;
  }

  /**
   * Runs `transaction` on a connection of its own, waiting for one when
   * `maxTransactionClients` transactions already run. A connection whose
   * transaction threw is closed, since it may still watch keys.
   */
  async withTransactionClient<T>(transaction: (client: Redis) => Promise<T>): Promise<T> {
    const client = await this.leaseTransactionClient();
    let reusable = false;
    try {
      const result = await transaction(client);
      reusable = true;
      return result;
    } finally {
      this.returnTransactionClient(client, reusable);
    }
  }

  /** Runs `wait` on a connection that no other command uses until it ends. */
  async withBlockingClient<T>(wait: (client: Redis) => Promise<T>): Promise<T> {
    let client = this.idleBlockingClients.pop();
    if (client === undefined) {
      client = this.sharedClient().duplicate();
      this.watchConnection(client);
    }
    this.busyBlockingClients.add(client);

    let reusable = false;
    try {
      const result = await wait(client);
      reusable = true;
      return result;
    } finally {
      this.returnBlockingClient(client, reusable);
    }
  }

  /** Reports whether `close()` cut `client`, so an error on it comes from the close. */
  wasClosedByUs(client: Redis): boolean {
    return this.closedByUs.has(client);
  }

  /**
   * Closes every connection this backend opened. Blocking waits and
   * transactions in progress reject, and so do transactions waiting for a
   * connection. A client passed in by the application stays open.
   */
  async close(): Promise<void> {
    const closing = new ConnectionClosedError("The rate-limiter backend was closed while this operation waited for a connection.");
    for (const waiter of this.transactionQueue.splice(0)) {
      waiter.reject(closing);
    }

    // A blocked connection would reply to QUIT only after its wait ends, so busy ones are cut at once.
    for (const client of [...this.busyBlockingClients, ...this.busyTransactionClients]) {
      this.closedByUs.add(client);
      drop(client);
    }
    this.busyBlockingClients.clear();
    this.busyTransactionClients.clear();

    const idle = [...this.idleBlockingClients.splice(0), ...this.idleTransactionClients.splice(0)];
    if (this.shared !== undefined && this.options.externalClient === undefined) {
      idle.push(this.shared);
    }
    this.shared = undefined;

    await Promise.all(idle.map((client) => quit(client)));
  }

  private async leaseTransactionClient(): Promise<Redis> {
    // Each pass ends with a client or with a wait for one to be returned, which close() also ends.
    for (;;) {
      const idle = this.idleTransactionClients.pop();
      if (idle !== undefined && idle.status === "ready") {
        this.busyTransactionClients.add(idle);
        return idle;
      }
      if (idle !== undefined) {
        drop(idle);
        continue;
      }

      if (this.busyTransactionClients.size < this.options.maxTransactionClients) {
        return this.openTransactionClient();
      }

      await new Promise<void>((resolve, reject) => {
        this.transactionQueue.push({ resolve, reject });
      });
    }
  }

  private async openTransactionClient(): Promise<Redis> {
    const client = this.sharedClient().duplicate(TRANSACTION_CLIENT_OVERRIDES);
    this.watchConnection(client);
    this.busyTransactionClients.add(client);

    try {
      await client.connect();
    } catch (error) {
      this.busyTransactionClients.delete(client);
      drop(client);
      this.wakeTransactionWaiter();
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConnectionFailedError(
        `Failed to connect to the rate-limiter backend at ${this.options.displayUrl}: ${reason}. ` +
          "Check that the server is running and that the URL and credentials are right.",
        { cause: error },
      );
    }
    return client;
  }

  private returnTransactionClient(client: Redis, reusable: boolean): void {
    if (!this.busyTransactionClients.delete(client)) {
      // close() took it over already.
      return;
    }

    if (reusable && client.status === "ready") {
      this.idleTransactionClients.push(client);
    } else {
      drop(client);
    }
    this.wakeTransactionWaiter();
  }

  private wakeTransactionWaiter(): void {
    this.transactionQueue.shift()?.resolve();
  }

  private returnBlockingClient(client: Redis, reusable: boolean): void {
    if (!this.busyBlockingClients.delete(client)) {
      return;
    }

    if (reusable && this.idleBlockingClients.length < MAX_IDLE_BLOCKING_CLIENTS) {
      this.idleBlockingClients.push(client);
      return;
    }
    void quit(client);
  }

  /** Logs a lost and a regained connection once each; without an error listener ioredis prints to the console. */
  private watchConnection(client: Redis): void {
    const { displayUrl, logger } = this.options;
    client.on("error", (error: Error) => {
      if (this.connectionHealthy && !this.closedByUs.has(client)) {
        this.connectionHealthy = false;
        logger.warn({ err: error, url: displayUrl }, `Connection to the rate-limiter backend at ${displayUrl} failed: ${error.message}. Reconnecting.`);
      }
    });
    client.on("ready", () => {
      if (!this.connectionHealthy) {
        this.connectionHealthy = true;
        logger.info({ url: displayUrl }, `Reconnected to the rate-limiter backend at ${displayUrl}.`);
      }
    });
  }
}

/** Closes a connection with QUIT when it is up, else drops it at once instead of waiting for a reconnection. */
async function quit(client: Redis): Promise<void> {
  if (client.status !== "ready") {
    drop(client);
    return;
  }

  try {
    await client.quit();
  } catch {
    drop(client);
  }
}

/**
 * Disconnects a client unless it has ended already. On an ended client,
 * ioredis 6.1 starts a 2-second timer to destroy a socket that is already
 * gone, which keeps the process alive that long.
 */
function drop(client: Redis): void {
  if (client.status !== "end") {
    client.disconnect();
  }
}
