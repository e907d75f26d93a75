/**
 * The Redis broker, a peer of Python Dramatiq's: same keys, same message
 * bodies, same per-command effects, so Node and Python producers and
 * workers can share queues (see the key layout in `dispatch.lua`).
 *
 * Every operation is one call of the dispatch script, which also records
 * this broker's heartbeat. Unacked messages of a broker whose heartbeat is
 * older than `heartbeatTimeout` go back to their queue when another
 * broker's call runs maintenance, which happens on `maintenanceChance` in a
 * million calls. There is no visibility timeout: a live broker can hold an
 * unacked message forever, so a worker keeps its heartbeat fresh while it
 * has consumers, from a worker thread (see `heartbeat-thread.ts`) and from
 * a timer on the main thread.
 */

import { randomUUID } from "node:crypto";

import type { Redis } from "ioredis";

import { buildClientOptions, createBrokerClient, describeRedisClient, quitClient, type BrokerRedisClient } from "./client.js";
import { Broker, type BrokerOptions, type ConsumeOptions, type JoinOptions } from "../../broker.js";
import {
  BrokerError,
  ConfigurationError,
  ConnectionClosedError,
  ConnectionFailedError,
  DramatiqError,
  QueueJoinTimeoutError,
} from "../../errors.js";
import { redactUrl } from "../../logger.js";
import { Message } from "../../message/message.js";
import { canonicalQueueName, delayQueueName, validateQueueName } from "../../message/queue-names.js";
import { delegateHeartbeat } from "./heartbeat-keeper.js";
import { HeartbeatThread } from "./heartbeat-thread.js";
import { RedisConsumer } from "./redis-consumer.js";
import type { RespClientOptions } from "./resp/options.js";
import { getDispatchScript, probeMaxUnpackSize } from "./scripts.js";
import { WakeUpChannel } from "./wake-ups.js";

/** Options of RedisBroker. */
export interface RedisBrokerOptions extends BrokerOptions {
  /** Server URL: `redis://`, `rediss://` (TLS) or `unix://`. @defaultValue `"redis://127.0.0.1:6379/0"` */
  url?: string;
  /**
   * An existing ioredis client to use instead of `url`, for ioredis
   * features that the built-in client lacks (Sentinel, custom connectors).
   * `close()` leaves it open.
   */
  client?: Redis;
  /**
   * Options of the built-in client applied over those read from `url`,
   * e.g. `{ tls: { ca } }` for `rediss://`. They have the names and
   * meanings of the ioredis options, but only a subset is supported (see
   * `RespClientOptions`), and any other option raises ConfigurationError.
   * Not allowed together with `client`.
   */
  redisOptions?: RespClientOptions;
  /** Prefix of every key; brokers with different namespaces share nothing. @defaultValue `"dramatiq"` */
  namespace?: string;
  /** Milliseconds after which a silent broker's unacked messages are requeued by the others. @defaultValue 60000 */
  heartbeatTimeout?: number;
  /** Milliseconds dead letters are kept in `<q>.XQ`. @defaultValue 604800000 (7 days) */
  deadMessageTtl?: number;
  /** Dispatch calls in a million that run maintenance (dead-broker recovery, dead-letter expiry). @defaultValue 1000 */
  maintenanceChance?: number;
}

/** `MessageProxy.delivery` of a Redis delivery: the id the message was fetched by, which acks use. */
export interface RedisDelivery {
  readonly redisMessageId: string;
}

/** @internal One entry of a fetch: the popped id and its body, or null when the body is gone. */
export interface FetchedMessage {
  readonly redisMessageId: string;
  readonly body: Buffer | null;
}

/** @internal Commands of the dispatch script. */
export type DispatchCommand = "enqueue" | "fetch" | "ack" | "nack" | "requeue" | "purge" | "qsize";

/** @internal Overrides for one dispatch call, for tests that replay captured calls. */
export interface DispatchOverrides {
  now?: number;
  maintenance?: boolean;
}

interface DeadLetterRecord {
  readonly redisMessageId: string;
  readonly messageId: string | undefined;
  readonly actorName: string | undefined;
  readonly error: Error | undefined;
}

const DEFAULT_URL = "redis://127.0.0.1:6379/0";
const JOIN_POLL_INTERVAL = 100;

export class RedisBroker extends Broker {
  /** Identity of this broker in heartbeats and acks-set names; new for every instance. */
  readonly brokerId: string = randomUUID();
  readonly namespace: string;
  readonly heartbeatTimeout: number;
  readonly deadMessageTtl: number;
  readonly maintenanceChance: number;
  /** The URL with any password replaced by `***`, for messages. */
  readonly displayUrl: string;

  private readonly connectionOptions: RespClientOptions | undefined;
  private readonly externalClient: BrokerRedisClient | undefined;
  private client: BrokerRedisClient | undefined;
  private detachClient: (() => void) | undefined;
  private connectionHealthy = false;
  /** Whether the current client was ever ready; failures before that are failed connections, not lost ones. */
  private clientWasReady = false;
  /** The latest 'error' event of the client; it explains a failed connect better than the rejection does. */
  private lastClientError: Error | undefined;
  private batchSizePromise: Promise<number> | undefined;
  private readonly consumers = new Set<RedisConsumer>();
  private readonly wakeUps: WakeUpChannel;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** The thread, or the parent process, that refreshes the heartbeat while the event loop is blocked. */
  private heartbeatThread: { stop(): Promise<void> } | undefined;
  private heartbeatFailing = false;
  /** The first message dead-lettered by this process per canonical queue since its last flush, for `join()`. */
  private readonly deadLetters = new Map<string, DeadLetterRecord>();
  private closing: Promise<void> | undefined;

  constructor(options: RedisBrokerOptions = {}) {
    super(options);
    const { url, client, redisOptions } = options;
    if (client !== undefined && !isRedisClient(client)) {
      throw new ConfigurationError(
        "Invalid RedisBroker option `client`: expected an ioredis client (new Redis(...)); pass `url` or `redisOptions` to have the broker create one.",
      );
    }
    if (client !== undefined && (url !== undefined || redisOptions !== undefined)) {
      throw new ConfigurationError("RedisBroker takes either `client` or `url`/`redisOptions`, not both: configure the client you pass instead.");
    }

    this.namespace = validateNamespace(options.namespace ?? "dramatiq");
    this.heartbeatTimeout = positiveInteger("heartbeatTimeout", options.heartbeatTimeout ?? 60_000);
    this.deadMessageTtl = nonNegativeInteger("deadMessageTtl", options.deadMessageTtl ?? 604_800_000);
    this.maintenanceChance = chance(options.maintenanceChance ?? 1000);
    this.externalClient = client;

    if (client === undefined) {
      const chosenUrl = url ?? DEFAULT_URL;
      this.displayUrl = redactUrl(chosenUrl);
      this.connectionOptions = buildClientOptions(chosenUrl, redisOptions, { owner: "RedisBroker", displayUrl: this.displayUrl, logger: this.logger });
    } else {
      this.displayUrl = describeRedisClient(client);
      this.connectionOptions = undefined;
    }

    this.wakeUps = new WakeUpChannel({
      namespace: this.namespace,
      senderId: this.brokerId,
      logger: this.logger,
      createSubscriber: () => this.getClient().duplicate(),
      onWakeUp: (queueName) => {
        this.wakeLocalConsumers(queueName);
      },
    });
  }

  /** @internal The options this broker creates its client with; undefined with `client`. */
  get clientOptions(): Readonly<RespClientOptions> | undefined {
    return this.connectionOptions;
  }

  /** Returns the client in use, creating it on first use and again after `close()`. */
  private getClient(): BrokerRedisClient {
    if (this.client !== undefined) {
      return this.client;
    }

    const client = this.externalClient ?? createBrokerClient(this.connectionOptions ?? {});
    const onError = (error: Error): void => {
      this.onClientError(error);
    };
    const onReady = (): void => {
      this.onClientReady();
    };
    client.on("error", onError);
    client.on("ready", onReady);
    this.detachClient = () => {
      client.off("error", onError);
      client.off("ready", onReady);
    };

    this.client = client;
    this.connectionHealthy = client.status === "ready";
    this.clientWasReady = this.connectionHealthy;
    this.closing = undefined;
    return client;
  }

  private onClientError(error: Error): void {
    this.lastClientError = error;
    if (this.connectionHealthy) {
      this.connectionHealthy = false;
      this.logger.warn({ err: error, url: this.displayUrl }, `Lost the connection to Redis at ${this.displayUrl}: ${errorMessage(error)}. Reconnecting.`);
      return;
    }
    this.logger.debug({ err: error, url: this.displayUrl }, `Redis connection attempt to ${this.displayUrl} failed: ${errorMessage(error)}.`);
  }

  private onClientReady(): void {
    this.clientWasReady = true;
    if (!this.connectionHealthy) {
      this.connectionHealthy = true;
      this.logger.info({ url: this.displayUrl }, `Connected to Redis at ${this.displayUrl}.`);
    }
  }

  /**
   * Opens the connection and checks it with PING. Throws
   * ConnectionFailedError, naming the URL without its password, when the
   * server cannot be reached; a later call tries again.
   */
  override async connect(): Promise<void> {
    const client = this.getClient();
    this.lastClientError = undefined;
    try {
      if (client.status === "wait") {
        await client.connect();
      }
      await client.ping();
      await this.batchSize(client);
    } catch (error) {
      if (error instanceof ConfigurationError) {
        throw error;
      }
      if (this.externalClient === undefined && this.client === client) {
        // The client would keep reconnecting in the background; the next call starts afresh.
        this.client = undefined;
        client.disconnect();
      }
      const reason = errorMessage(this.lastClientError ?? error);
      throw new ConnectionFailedError(
        `Failed to connect to Redis at ${this.displayUrl}: ${reason}. Check that the server is running and that the URL and credentials are right.`,
        { cause: this.lastClientError ?? error },
      );
    }
  }

  /** Adds a fresh `redis_message_id` (kept in its old position when retrying a message that already has one). */
  protected override prepareForQueue(message: Message): Message {
    return message.copy({ options: { ...message.options, redis_message_id: randomUUID() } });
  }

  protected override async publish(message: Message): Promise<void> {
    const redisMessageId = message.options["redis_message_id"];
    if (typeof redisMessageId !== "string" || redisMessageId === "") {
      throw new ConfigurationError(
        `Message '${message.messageId}' has no options.redis_message_id; enqueue messages with broker.enqueue(), which adds it.`,
      );
    }

    await this.dispatch("enqueue", message.queueName, [redisMessageId, message.encode()]);
    this.wakeConsumers(message.queueName);
  }

  override consume(queueName: string, options: ConsumeOptions): RedisConsumer {
    validateQueueName(canonicalQueueName(queueName));
    if (queueName.endsWith(".XQ")) {
      throw new ConfigurationError(`Cannot consume the dead-letter queue '${queueName}': consume '${canonicalQueueName(queueName)}' or its delay queue instead.`);
    }
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1) {
      throw new ConfigurationError(`Invalid prefetch ${String(options.prefetch)} for queue '${queueName}': it must be a whole number of at least 1.`);
    }

    return new RedisConsumer(this, queueName, options.prefetch);
  }

  /** Deletes the messages of `queueName`, its delay queue and its dead letters; deliveries in flight are abandoned. */
  override async flush(queueName: string): Promise<void> {
    const canonical = canonicalQueueName(queueName);
    for (const name of [canonical, delayQueueName(canonical)]) {
      await this.dispatch("purge", name);
      for (const consumer of this.consumersOf(name)) {
        consumer.abandonAll();
      }
    }
    this.deadLetters.delete(canonical);
  }

  /** Flushes every declared queue with its delay and dead-letter queues. Running workers keep consuming. */
  override async flushAll(): Promise<void> {
    const queues = new Set([...this.getDeclaredQueues(), ...[...this.consumers].map((consumer) => canonicalQueueName(consumer.queueName))]);
    for (const queueName of queues) {
      await this.flush(queueName);
    }
    this.deadLetters.clear();
  }

  /**
   * Polls until `queueName` and its delay queue hold no message, acked or
   * not. With `failFast` (the default) it rejects once a message of the
   * queue is dead-lettered. When this process dead-lettered it since the
   * last flush, the rejection is the actor's error. When another process
   * dead-lettered it after the join started, it is a DramatiqError naming
   * the message.
   */
  /** Counts waiting and fetched-but-unacked messages (the `.msgs` hash), or dead letters for `<q>.XQ`. */
  override async queueDepth(queueName: string): Promise<number> {
    const client = this.getClient();
    try {
      if (queueName.endsWith(".XQ")) {
        return await client.zcard(`${this.namespace}:${queueName}`);
      }
      return await client.hlen(`${this.namespace}:${queueName}.msgs`);
    } catch (error) {
      throw this.toBrokerError(error, `the depth check of queue '${queueName}'`);
    }
  }

  override async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const { timeout, failFast = true } = options;
    const canonical = canonicalQueueName(queueName);
    const startedAt = Date.now();

    for (;;) {
      if (failFast) {
        await this.throwIfDeadLettered(canonical, startedAt);
      }

      const counts = await this.pendingCounts(canonical);
      if (counts.waiting + counts.delayed === 0) {
        // The last message may have been dead-lettered between the check
        // above and the count, which no longer shows it.
        if (failFast) {
          await this.throwIfDeadLettered(canonical, startedAt);
        }
        return;
      }

      if (timeout !== undefined && Date.now() - startedAt >= timeout) {
        throw new QueueJoinTimeoutError(
          `Timed out after ${timeout} ms waiting for queue '${canonical}': ${counts.waiting} message(s) waiting or in flight, ` +
            `${counts.delayed} delayed (delayed sends or retries with backoff).`,
        );
      }
      await sleep(JOIN_POLL_INTERVAL);
    }
  }

  private async pendingCounts(canonical: string): Promise<{ waiting: number; delayed: number }> {
    const client = this.getClient();
    try {
      const [waiting, delayed] = await Promise.all([
        client.hlen(`${this.namespace}:${canonical}.msgs`),
        client.hlen(`${this.namespace}:${delayQueueName(canonical)}.msgs`),
      ]);
      return { waiting, delayed };
    } catch (error) {
      throw this.toBrokerError(error, `the join check of queue '${canonical}'`);
    }
  }

  private async throwIfDeadLettered(canonical: string, since: number): Promise<void> {
    const local = this.deadLetters.get(canonical);
    if (local !== undefined) {
      throw local.error ?? new DramatiqError(`Message '${local.messageId ?? local.redisMessageId}' of queue '${canonical}' was dead-lettered.`);
    }

    const client = this.getClient();
    const deadKey = `${this.namespace}:${canonical}.XQ`;
    let body: Buffer | null;
    let redisMessageId: string | undefined;
    try {
      [redisMessageId] = await client.zrangebyscore(deadKey, since, "+inf", "LIMIT", 0, 1);
      if (redisMessageId === undefined) {
        return;
      }
      body = await client.hgetBuffer(`${deadKey}.msgs`, redisMessageId);
    } catch (error) {
      throw this.toBrokerError(error, `the join check of queue '${canonical}'`);
    }

    throw new DramatiqError(
      `Message ${describeDeadLetter(redisMessageId, body)} of queue '${canonical}' was dead-lettered by another process while joining; ` +
        "its error is in that worker's log. Pass failFast: false to wait for the other messages anyway.",
    );
  }

  /** Closes this broker's consumers, returning their unacked messages, and quits the client it created. Safe to call twice. */
  override async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const consumer of [...this.consumers]) {
      await consumer.close();
    }
    this.stopHeartbeat();

    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }

    if (this.externalClient !== undefined) {
      this.detachClient?.();
      return;
    }
    await quitClient(client);
    this.logger.debug({ url: this.displayUrl }, `Closed the connection to Redis at ${this.displayUrl}.`);
  }

  /**
   * @internal Runs one dispatch command. Maintenance runs on
   * `maintenanceChance` in a million calls other than ack and nack.
   */
  async dispatch(command: DispatchCommand, queueName: string, args: readonly (string | Buffer)[] = [], overrides: DispatchOverrides = {}): Promise<unknown> {
    const client = this.getClient();
    try {
      const batchSize = await this.batchSize(client);
      const maintenance = overrides.maintenance ?? (command !== "ack" && command !== "nack" && Math.random() * 1_000_000 < this.maintenanceChance);
      const argv = [
        command,
        String(overrides.now ?? Date.now()),
        queueName,
        this.brokerId,
        String(this.heartbeatTimeout),
        String(this.deadMessageTtl),
        maintenance ? "1" : "0",
        String(batchSize),
        ...args,
      ];
      return await this.runDispatch(client, argv);
    } catch (error) {
      throw this.toBrokerError(error, `the ${command} command on queue '${queueName}'`);
    }
  }

  /** Runs the dispatch script with `argv`; a seam for tests that record the calls. */
  protected async runDispatch(client: BrokerRedisClient, argv: readonly (string | Buffer)[]): Promise<unknown> {
    return getDispatchScript().run(client, [this.namespace], argv);
  }

  /** @internal Pops up to `count` messages into this broker's acks set for `queueName`. */
  async fetch(queueName: string, count: number): Promise<FetchedMessage[]> {
    const reply = await this.dispatch("fetch", queueName, [String(count)]);
    return parseFetchReply(reply);
  }

  /** @internal Ids in this broker's acks set for `queueName`. */
  async ackedIds(queueName: string): Promise<string[]> {
    try {
      return await this.getClient().smembers(this.acksKey(queueName));
    } catch (error) {
      throw this.toBrokerError(error, `the read of the acks set of queue '${queueName}'`);
    }
  }

  /** @internal Key of this broker's acks set for `queueName`. */
  acksKey(queueName: string): string {
    return `${this.namespace}:__acks__.${this.brokerId}.${queueName}`;
  }

  /** @internal The batch size of script calls, probed once per broker. */
  async batchSize(client: BrokerRedisClient = this.getClient()): Promise<number> {
    this.batchSizePromise ??= probeMaxUnpackSize(client);
    try {
      return await this.batchSizePromise;
    } catch (error) {
      this.batchSizePromise = undefined;
      throw error;
    }
  }

  /** @internal Records the first dead letter of a queue for `join()`. */
  recordDeadLetter(queueName: string, record: DeadLetterRecord): void {
    const canonical = canonicalQueueName(queueName);
    if (!this.deadLetters.has(canonical)) {
      this.deadLetters.set(canonical, record);
    }
  }

  /** @internal Called by a consumer when it starts; the first one starts the heartbeat timer. */
  registerConsumer(consumer: RedisConsumer): void {
    this.consumers.add(consumer);
    this.wakeUps.subscribe(consumer.queueName);
    this.startHeartbeat();
  }

  /** @internal Called by a consumer when it closes; the last one stops the heartbeat timer and the wake-up subscriber. */
  unregisterConsumer(consumer: RedisConsumer): void {
    this.consumers.delete(consumer);
    this.wakeUps.unsubscribe(consumer.queueName);
    if (this.consumers.size === 0) {
      this.stopHeartbeat();
      this.wakeUps.close();
    }
  }

  /** @internal Started consumers of `queueName` in this broker. */
  consumersOf(queueName: string): RedisConsumer[] {
    return [...this.consumers].filter((consumer) => consumer.queueName === queueName);
  }

  /**
   * @internal Makes idle consumers of `queueName` fetch now instead of at
   * their next poll: those of this broker at once, those of other processes
   * through the wake-up channel (see `wake-ups.ts`).
   */
  wakeConsumers(queueName: string): void {
    this.wakeLocalConsumers(queueName);
    if (this.client !== undefined) {
      this.wakeUps.notify(this.client, queueName);
    }
  }

  private wakeLocalConsumers(queueName: string): void {
    for (const consumer of this.consumers) {
      if (consumer.queueName === queueName) {
        consumer.wake();
      }
    }
  }

  /**
   * Refreshes the heartbeat every quarter of `heartbeatTimeout`, so a worker
   * whose tasks all run longer than the timeout, and which therefore fetches
   * nothing, is not taken for dead. A blocked event loop stops the timer,
   * but not the heartbeat thread, which has its own connection, nor the
   * CLI's main process, which keeps the heartbeats of its worker processes.
   */
  private startHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) {
      return;
    }

    const interval = Math.max(1, Math.floor(this.heartbeatTimeout / 4));
    this.heartbeatTimer = setInterval(() => {
      void this.beat();
    }, interval);
    this.heartbeatTimer.unref();
    const heartbeat = {
      connection: this.externalClient?.options ?? this.connectionOptions ?? {},
      key: `${this.namespace}:__heartbeats__`,
      brokerId: this.brokerId,
      interval,
      logger: this.logger,
    };
    // Under the CLI, the main process keeps it, which saves each worker process a thread.
    this.heartbeatThread = delegateHeartbeat(heartbeat) ?? HeartbeatThread.start(heartbeat);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    void this.heartbeatThread?.stop();
    this.heartbeatThread = undefined;
  }

  private async beat(): Promise<void> {
    try {
      await this.getClient().zadd(`${this.namespace}:__heartbeats__`, String(Date.now()), this.brokerId);
      if (this.heartbeatFailing) {
        this.heartbeatFailing = false;
        this.logger.info({ brokerId: this.brokerId }, "Heartbeat refreshed again after failures.");
      }
    } catch (error) {
      if (!this.heartbeatFailing) {
        this.heartbeatFailing = true;
        this.logger.warn(
          { err: error, brokerId: this.brokerId },
          `Failed to refresh the heartbeat of broker ${this.brokerId}: ${errorMessage(error)}. ` +
            `If this lasts ${this.heartbeatTimeout} ms, other workers will requeue this worker's unacked messages.`,
        );
      }
    }
  }

  private toBrokerError(error: unknown, operation: string): Error {
    if (error instanceof DramatiqError) {
      return error;
    }
    if (error instanceof Error && error.name === "ReplyError") {
      return new BrokerError(`Redis rejected ${operation}: ${error.message}`, { cause: error });
    }
    if (!this.clientWasReady) {
      return new ConnectionFailedError(
        `Failed to connect to Redis at ${this.displayUrl} for ${operation}: ${errorMessage(this.lastClientError ?? error)}. ` +
          "Check that the server is running and that the URL and credentials are right.",
        { cause: error },
      );
    }
    return new ConnectionClosedError(
      `Lost the connection to Redis at ${this.displayUrl} during ${operation}: ${errorMessage(error)}. The client reconnects by itself; try again later.`,
      { cause: error },
    );
  }
}

/** Parses the fetch reply `{ids, bodies}` (or an empty array). */
function parseFetchReply(reply: unknown): FetchedMessage[] {
  if (!Array.isArray(reply) || reply.length === 0) {
    return [];
  }

  const [ids, bodies] = reply as [unknown, unknown];
  if (!Array.isArray(ids) || !Array.isArray(bodies) || ids.length !== bodies.length) {
    throw new BrokerError("The Redis dispatch script returned a malformed fetch reply; is another version of dispatch.lua cached under the same SHA?");
  }

  return ids.map((id: unknown, index) => {
    const body: unknown = bodies[index];
    return {
      redisMessageId: Buffer.isBuffer(id) ? id.toString("utf8") : String(id),
      body: Buffer.isBuffer(body) ? body : null,
    };
  });
}

function describeDeadLetter(redisMessageId: string, body: Buffer | null): string {
  if (body === null) {
    return `'${redisMessageId}'`;
  }
  try {
    const message = Message.decode(body);
    return `'${message.messageId}' (actor '${message.actorName}')`;
  } catch {
    return `'${redisMessageId}' (undecodable body)`;
  }
}

/** Reports whether `value` has the ioredis client members the broker uses. */
function isRedisClient(value: unknown): value is Redis {
  const candidate = value as Partial<Redis> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.options === "object" &&
    typeof candidate.evalsha === "function" &&
    typeof candidate.on === "function"
  );
}

/** Returns the message of `error` without a final period, for embedding in a sentence. */
function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function validateNamespace(namespace: string): string {
  if (typeof namespace !== "string" || namespace === "") {
    throw new ConfigurationError(`Invalid Redis namespace ${JSON.stringify(namespace)}: it must be a non-empty string such as "dramatiq".`);
  }
  return namespace;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`Invalid RedisBroker option ${name}=${String(value)}: it must be a whole number of milliseconds, at least 1.`);
  }
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigurationError(`Invalid RedisBroker option ${name}=${String(value)}: it must be a whole number of milliseconds, 0 or more.`);
  }
  return value;
}

function chance(value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1_000_000) {
    throw new ConfigurationError(`Invalid RedisBroker option maintenanceChance=${String(value)}: it must be a number from 0 to 1000000 (calls in a million).`);
  }
  return value;
}
