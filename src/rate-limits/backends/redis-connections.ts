/**
 * The connections of one Redis rate-limiter backend:
 *
 * - a shared connection for single commands (`SET NX`, and the
 *   `MULTI; RPUSH; PEXPIRE; EXEC` of a notification, which the built-in
 *   client and ioredis both write as one unit, so concurrent callers cannot
 *   put a command inside it);
 * - a small pool for optimistic transactions, because WATCH belongs to a
 *   connection: two transactions on one connection would share their watched
 *   keys, and the first EXEC would unwatch the second one's keys, letting a
 *   lost update through;
 * - one connection per blocking wait in progress, because BRPOPLPUSH stalls
 *   every later command on its connection.
 *
 * Nothing connects before the first command.
 */

import { ConnectionHealthLog, closeClients, type BackendRedisClient, type DedicatedConnectionOptions } from "../../brokers/redis/backend-client.js";
import { BlockingClientPool } from "../../brokers/redis/blocking-clients.js";
import { dropClient } from "../../brokers/redis/client.js";
import type { RespClientOptions } from "../../brokers/redis/resp/options.js";
import { RespClient } from "../../brokers/redis/resp/resp-client.js";
import { ConnectionClosedError, ConnectionFailedError } from "../../errors.js";
import type { Logger } from "../../logger.js";

/**
 * Settings of transaction connections. A transaction connection must never
 * replay commands on a new connection: the WATCH would not be there, and a
 * replayed MULTI/EXEC would write without the check. So it fails commands
 * instead of queueing or resending them, and it is dropped instead of
 * reconnecting. The pool opens a fresh one for the next transaction.
 */
const TRANSACTION_CLIENT_OVERRIDES: DedicatedConnectionOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  retryStrategy: () => null,
};

/** Backend settings that RedisConnections needs. */
export interface RedisConnectionsOptions {
  /** Options of the shared built-in client, or undefined when `externalClient` is given. */
  readonly connectionOptions: RespClientOptions | undefined;
  /** A client the application passed in; it is used but never closed. */
  readonly externalClient: BackendRedisClient | undefined;
  /** Transactions that run at once; more wait for a free connection. */
  readonly maxTransactionClients: number;
  /** The server URL with its password hidden, for log lines. */
  readonly displayUrl: string;
  readonly logger: Logger;
}

export class RedisConnections {
  private shared: BackendRedisClient | undefined;
  private readonly idleTransactionClients: BackendRedisClient[] = [];
  private readonly busyTransactionClients = new Set<BackendRedisClient>();
  private readonly transactionQueue: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly blockingClients: BlockingClientPool;
  /** Connections that `close()` cut, so that their failures read as a close, not an outage. */
  private readonly closedByUs = new WeakSet<BackendRedisClient>();
  private readonly healthLog: ConnectionHealthLog;

  constructor(private readonly options: RedisConnectionsOptions) {
    this.healthLog = new ConnectionHealthLog({
      description: "rate-limiter backend",
      displayUrl: options.displayUrl,
      logger: options.logger,
      ignoreErrorsOf: (client) => this.closedByUs.has(client),
    });
    this.blockingClients = new BlockingClientPool(() => {
      const client = this.sharedClient().duplicate();
      this.healthLog.watch(client);
      return client;
    });
  }

  /** Returns the shared connection, creating it on first use. */
  sharedClient(): BackendRedisClient {
    if (this.shared !== undefined) {
      return this.shared;
    }

    let client = this.options.externalClient;
    if (client === undefined) {
      client = new RespClient(this.options.connectionOptions ?? {});
      this.healthLog.watch(client);
    }
    this.shared = client;
    return client;
  }

  /**
   * Runs `transaction` on a connection of its own, waiting for one when
   * `maxTransactionClients` transactions already run. A connection whose
   * transaction threw is closed, since it may still watch keys.
   */
  async withTransactionClient<T>(transaction: (client: BackendRedisClient) => Promise<T>): Promise<T> {
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
  async withBlockingClient<T>(wait: (client: BackendRedisClient) => Promise<T>): Promise<T> {
    return this.blockingClients.run(wait);
  }

  /** Reports whether `close()` cut `client`, so an error on it comes from the close. */
  wasClosedByUs(client: BackendRedisClient): boolean {
    return this.closedByUs.has(client);
  }

  /**
   * Closes every connection this backend opened. Blocking waits and
   * transactions in progress reject, and so do transactions waiting for a
   * connection. A client passed in by the application stays open.
   */
  async close(): Promise<void> {
    const waiters = this.transactionQueue.splice(0);
    const blocking = this.blockingClients.detach();
    const busy = [...blocking.busy, ...this.busyTransactionClients];
    this.busyTransactionClients.clear();

    const idle = [...blocking.idle, ...this.idleTransactionClients.splice(0)];
    if (this.shared !== undefined && this.options.externalClient === undefined) {
      idle.push(this.shared);
    }
    this.shared = undefined;

    await closeClients(idle, busy, (client) => {
      this.closedByUs.add(client);
    });

    // Rejected last, like the operations on busy connections, so they fail in the turn in which close() resolves.
    const closing = new ConnectionClosedError("The rate-limiter backend was closed while this operation waited for a connection.");
    for (const waiter of waiters) {
      waiter.reject(closing);
    }
  }

  private async leaseTransactionClient(): Promise<BackendRedisClient> {
    // Each pass ends with a client or with a wait for one to be returned, which close() also ends.
    for (;;) {
      const idle = this.idleTransactionClients.pop();
      if (idle !== undefined && idle.status === "ready") {
        this.busyTransactionClients.add(idle);
        return idle;
      }
      if (idle !== undefined) {
        dropClient(idle);
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

  private async openTransactionClient(): Promise<BackendRedisClient> {
    const client = this.sharedClient().duplicate(TRANSACTION_CLIENT_OVERRIDES);
    this.healthLog.watch(client);
    this.busyTransactionClients.add(client);

    try {
      await client.connect();
    } catch (error) {
      this.busyTransactionClients.delete(client);
      dropClient(client);
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

  private returnTransactionClient(client: BackendRedisClient, reusable: boolean): void {
    if (!this.busyTransactionClients.delete(client)) {
      // close() took it over already.
      return;
    }

    if (reusable && client.status === "ready") {
      this.idleTransactionClients.push(client);
    } else {
      dropClient(client);
    }
    this.wakeTransactionWaiter();
  }

  private wakeTransactionWaiter(): void {
    this.transactionQueue.shift()?.resolve();
  }
}
