/**
 * The consumer of one Redis queue, `<q>` or `<q>.DQ`. Redis cannot push, so
 * a fetch loop pulls messages with the dispatch script's `fetch` whenever
 * fewer than `prefetch` deliveries are outstanding (handed to the worker and
 * not yet acked, nacked or requeued), and hands them to the worker.
 *
 * States: idle → running (`start`) → cancelled (`cancel`: no more fetches,
 * settling still works) → closed (`close`: outstanding deliveries go back to
 * the queue). When a fetch finds nothing, the loop sleeps 5 ms, doubling
 * per empty fetch up to 500 ms, where Python polls up to every 1000 ms. An
 * enqueue, requeue or settle through the same broker wakes it at once, and
 * so does an enqueue or requeue by a melodramatiq broker in another process,
 * through the broker's wake-up channel (see `wake-ups.ts`).
 */

import type { Consumer, DeliveryHandler } from "../../consumer.js";
import { BrokerConnectionError, ConfigurationError, DecodeError, toError } from "../../errors.js";
import { getLogger } from "../../logger.js";
import { Message } from "../../message/message.js";
import { InFlightList, type InFlightEntry } from "../../worker/in-flight-list.js";
import { consumerState, MessageProxy } from "../../worker/message-proxy.js";
import type { FetchedMessage, RedisBroker, RedisDelivery } from "./redis-broker.js";

const IDLE_POLL_MIN = 5;
const IDLE_POLL_MAX = 500;
/** Maximum sleep while prefetch is full; a settle wakes the loop earlier. */
const FULL_WAIT = 1000;
const FETCH_RETRY_MIN = 250;
/** Python's consumers restart 3000 ms after a connection error. */
const FETCH_RETRY_MAX = 3000;
/** Attempts of one ack or nack before it is left for redelivery. */
const SETTLE_ATTEMPTS = 5;
const SETTLE_RETRY_MIN = 500;
const SETTLE_RETRY_MAX = 5000;
const REQUEUE_CHUNK = 1000;

type ConsumerState = "idle" | "running" | "cancelled" | "closed";

/** The consumer's record of a delivery it handed to the worker, kept on the proxy under `consumerState`. */
class Outstanding {
  /** Set while its ack or nack is in flight; it is never requeued meanwhile. */
  settling = false;

  constructor(
    readonly redisMessageId: string,
    /** Its place among the outstanding deliveries, which settling or requeueing removes. */
    readonly entry: InFlightEntry<MessageProxy>,
  ) {}
}

export class RedisConsumer implements Consumer {
  private readonly logger = getLogger("melodramatiq.broker.RedisConsumer");
  private readonly outstanding = new InFlightList<MessageProxy>();
  /**
   * Ids whose requeue failed (the server unreachable). They stay in this
   * broker's acks set, which no other worker recovers while this process
   * keeps its heartbeat, so the fetch loop returns them once Redis is
   * reachable again.
   */
  private unreturned: string[] = [];
  private handler: DeliveryHandler | undefined;
  private state: ConsumerState = "idle";
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private misses = 0;
  private stopSleeping: (() => void) | undefined;
  private wakePending = false;

  constructor(
    private readonly broker: RedisBroker,
    readonly queueName: string,
    private readonly prefetch: number,
  ) {}

  /** Deliveries handed to the worker and not yet acked, nacked or requeued. */
  get outstandingCount(): number {
    return this.outstanding.size;
  }

  async start(handler: DeliveryHandler): Promise<void> {
    if (this.state !== "idle") {
      throw new ConfigurationError(`The consumer of '${this.queueName}' was already started; create a new one with broker.consume().`);
    }

    await this.broker.connect();
    this.handler = handler;
    this.state = "running";
    this.broker.registerConsumer(this);
    this.loop = this.runLoop();
    this.logger.debug({ queueName: this.queueName, prefetch: this.prefetch }, `Consuming '${this.queueName}' with prefetch ${this.prefetch}.`);
  }

  /** Makes a sleeping fetch loop fetch now; a wake during a fetch makes the next sleep return at once. */
  wake(): void {
    this.misses = 0;
    if (this.stopSleeping === undefined) {
      this.wakePending = true;
      return;
    }
    this.stopSleeping();
  }

  private async runLoop(): Promise<void> {
    try {
      await this.fetchUntilCancelled();
    } catch (error) {
      // Only a bug gets here; a worker without deliveries is better than a crash.
      this.logger.error({ err: error, queueName: this.queueName }, `The fetch loop of '${this.queueName}' stopped after an unexpected error.`);
    }
  }

  private async fetchUntilCancelled(): Promise<void> {
    let failures = 0;

    while (this.state === "running") {
      const room = this.prefetch - this.outstanding.size;
      if (room <= 0) {
        await this.sleep(FULL_WAIT);
        // The acks of one batch settle one by one within a turn, and the
        // first one wakes the loop. Waiting for the rest of the turn lets one
        // fetch fill all the room they free, instead of several small fetches.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }

      let fetched: FetchedMessage[];
      try {
        if (this.unreturned.length > 0) {
          await this.returnUnreturned();
        }
        fetched = await this.broker.fetch(this.queueName, room);
      } catch (error) {
        failures += 1;
        const delay = Math.min(FETCH_RETRY_MIN * 2 ** (failures - 1), FETCH_RETRY_MAX);
        this.logFetchFailure(error, failures, delay);
        await this.sleep(delay);
        continue;
      }

      if (failures > 0) {
        this.logger.info({ queueName: this.queueName, failures }, `Fetching from '${this.queueName}' works again after ${failures} failure(s).`);
        failures = 0;
      }

      if (this.state !== "running") {
        await this.returnUndelivered(fetched);
        return;
      }

      if (fetched.length === 0) {
        const delay = Math.min(IDLE_POLL_MIN * 2 ** this.misses, IDLE_POLL_MAX);
        this.misses = Math.min(this.misses + 1, 30);
        await this.sleep(delay);
        continue;
      }

      this.misses = 0;
      await this.deliverAll(fetched);
    }
  }

  private logFetchFailure(error: unknown, failures: number, delay: number): void {
    const fields = { err: error, queueName: this.queueName, failures };
    const text = `Failed to fetch from '${this.queueName}' (${describe(error)}); retrying in ${delay} ms.`;
    if (failures === 1 || !(error instanceof BrokerConnectionError)) {
      this.logger.warn(fields, text);
    } else {
      this.logger.debug(fields, text);
    }
  }

  /** Resolves after `ms`, or earlier on `wake()` or `cancel()`. */
  private sleep(ms: number): Promise<void> {
    if (this.wakePending || this.state !== "running") {
      this.wakePending = false;
      return Promise.resolve();
    }

    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.stopSleeping = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.stopSleeping = finish;
    });
  }

  /**
   * Hands decodable messages to the worker in one synchronous pass, so a
   * cancel cannot come between them, then deals with the bad entries.
   */
  private async deliverAll(fetched: readonly FetchedMessage[]): Promise<void> {
    const missing: string[] = [];
    const undecodable: { redisMessageId: string; error: DecodeError }[] = [];

    for (const { redisMessageId, body } of fetched) {
      if (body === null) {
        missing.push(redisMessageId);
        continue;
      }

      try {
        this.deliver(redisMessageId, Message.decode(body));
      } catch (error) {
        const decodeError = error instanceof DecodeError ? error : new DecodeError(describe(error), body, { cause: error });
        undecodable.push({ redisMessageId, error: decodeError });
      }
    }

    for (const redisMessageId of missing) {
      await this.dropMissing(redisMessageId);
    }
    for (const { redisMessageId, error } of undecodable) {
      await this.deadLetterUndecodable(redisMessageId, error);
    }
  }

  private deliver(redisMessageId: string, message: Message): void {
    const logFields = { messageId: message.messageId, actorName: message.actorName, redisMessageId, queueName: this.queueName };
    const bodyId = message.options["redis_message_id"];
    if (bodyId !== redisMessageId) {
      this.logger.warn(
        logFields,
        `Message '${message.messageId}' was fetched from '${this.queueName}' as ${redisMessageId} but its options.redis_message_id is ` +
          `${JSON.stringify(bodyId)}; it will be acked by the fetched id. Its producer does not follow the Redis broker's layout.`,
      );
    }
    if (message.queueName !== this.queueName) {
      this.logger.warn(
        logFields,
        `Message '${message.messageId}' names queue '${message.queueName}' but was fetched from '${this.queueName}'; processing it and acking it on '${this.queueName}'.`,
      );
    }

    const delivery: RedisDelivery = { redisMessageId };
    const proxy = new MessageProxy(message, this.queueName, delivery);
    proxy[consumerState] = new Outstanding(redisMessageId, this.outstanding.add(proxy));
    try {
      this.handler?.(proxy);
    } catch (error) {
      this.logger.error({ ...logFields, err: error }, `The delivery handler of '${this.queueName}' threw for message '${message.messageId}'.`);
    }
  }

  /** Acks a listed id whose body is gone, so it leaves the acks set; there is nothing to process. */
  private async dropMissing(redisMessageId: string): Promise<void> {
    this.logger.warn(
      { redisMessageId, queueName: this.queueName },
      `Skipping message ${redisMessageId} of '${this.queueName}': its body is missing from ${this.broker.namespace}:${this.queueName}.msgs.`,
    );
    try {
      await this.broker.dispatch("ack", this.queueName, [redisMessageId]);
    } catch (error) {
      this.logger.warn({ err: error, redisMessageId, queueName: this.queueName }, `Failed to drop message ${redisMessageId} from the acks set of '${this.queueName}'.`);
    }
  }

  /** Moves an undecodable body to the dead-letter queue; unless that nack fails, it is never delivered again. */
  private async deadLetterUndecodable(redisMessageId: string, error: DecodeError): Promise<void> {
    this.logger.error(
      { err: error, redisMessageId, queueName: this.queueName },
      `Failed to decode message ${redisMessageId} of '${this.queueName}': ${error.message} Moving it to the dead-letter queue.`,
    );
    this.broker.recordDeadLetter(this.queueName, { redisMessageId, messageId: undefined, actorName: undefined, error });
    try {
      await this.broker.dispatch("nack", this.queueName, [redisMessageId]);
    } catch (nackError) {
      this.logger.error(
        { err: nackError, redisMessageId, queueName: this.queueName },
        `Failed to dead-letter message ${redisMessageId} of '${this.queueName}'; it stays unacked until this consumer closes.`,
      );
    }
  }

  /** Requeues messages that a fetch returned after cancel() and were never delivered. */
  private async returnUndelivered(fetched: readonly FetchedMessage[]): Promise<void> {
    const ids = fetched.map((entry) => entry.redisMessageId);
    if (ids.length === 0) {
      return;
    }
    try {
      await this.requeueIds(ids);
    } catch (error) {
      this.logger.warn({ err: error, queueName: this.queueName, count: ids.length }, `Failed to return ${ids.length} undelivered message(s) to '${this.queueName}'.`);
    }
  }

  async ack(message: MessageProxy): Promise<void> {
    await this.settle(message, "ack");
  }

  async nack(message: MessageProxy): Promise<void> {
    const record = this.outstandingRecord(message);
    if (record !== undefined && !record.settling) {
      this.broker.recordDeadLetter(this.queueName, {
        redisMessageId: record.redisMessageId,
        messageId: message.messageId,
        actorName: message.actorName,
        error: message.error,
      });
    }
    await this.settle(message, "nack");
  }

  /**
   * Acks or nacks by the fetched id, retrying connection failures a few
   * times. A delivery that is not outstanding (settled, requeued, flushed)
   * is ignored, so nothing is acked twice. After the last attempt the error
   * propagates and the id stays in the acks set. The message is then
   * delivered again once this consumer closes or this process dies.
   */
  private async settle(message: MessageProxy, command: "ack" | "nack"): Promise<void> {
    const record = this.outstandingRecord(message);
    if (record === undefined || record.settling) {
      return;
    }

    const { redisMessageId } = record;
    record.settling = true;
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          await this.broker.dispatch(command, this.queueName, [redisMessageId]);
          return;
        } catch (error) {
          if (!(error instanceof BrokerConnectionError) || attempt >= SETTLE_ATTEMPTS) {
            throw error;
          }

          const delay = Math.min(SETTLE_RETRY_MIN * 2 ** (attempt - 1), SETTLE_RETRY_MAX);
          this.logger.warn(
            { err: error, messageId: message.messageId, actorName: message.actorName, redisMessageId, attempt },
            `Failed to ${command} message '${message.messageId}' (attempt ${attempt} of ${SETTLE_ATTEMPTS}); retrying in ${delay} ms.`,
          );
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } finally {
      record.settling = false;
      this.outstanding.remove(record.entry);
      this.wake();
    }
  }

  /** Puts outstanding deliveries back at the tail of the queue; they are marked abandoned. */
  async requeue(messages: readonly MessageProxy[]): Promise<void> {
    const ids: string[] = [];
    for (const message of messages) {
      const record = this.outstandingRecord(message);
      if (record !== undefined && !record.settling) {
        this.outstanding.remove(record.entry);
        message.abandoned = true;
        ids.push(record.redisMessageId);
      }
    }

    if (ids.length === 0) {
      return;
    }
    try {
      await this.requeueIds(ids);
    } catch (error) {
      this.unreturned.push(...ids);
      throw error;
    } finally {
      this.wake();
    }
  }

  /** Requeues the ids of failed requeues; throws, keeping them, while Redis is unreachable. */
  private async returnUnreturned(): Promise<void> {
    const ids = this.unreturned;
    this.unreturned = [];
    try {
      await this.requeueIds(ids);
    } catch (error) {
      this.unreturned.push(...ids);
      throw error;
    }
    this.logger.info({ queueName: this.queueName, count: ids.length }, `Returned ${ids.length} message(s) to '${this.queueName}' whose requeue had failed.`);
  }

  private async requeueIds(ids: readonly string[]): Promise<void> {
    for (let start = 0; start < ids.length; start += REQUEUE_CHUNK) {
      await this.broker.dispatch("requeue", this.queueName, ids.slice(start, start + REQUEUE_CHUNK));
    }
    this.broker.wakeConsumers(this.queueName);
  }

  /** Stops fetching and waits for a fetch in flight; acks, nacks and requeues keep working. */
  async cancel(): Promise<void> {
    if (this.state === "running") {
      this.state = "cancelled";
      this.stopSleeping?.();
    }
    await this.loop;
  }

  /**
   * Stops fetching and returns every delivery not being acked or nacked to
   * the tail of the queue, marking it abandoned so the worker does not ack
   * it later. The last consumer of the queue in this broker also requeues
   * whatever else is left in the broker's acks set: ids of fetches or acks
   * that a connection loss interrupted. Errors are logged, not thrown; what
   * could not be returned is recovered by other workers once this
   * process's heartbeat stops.
   */
  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const started = this.state !== "idle";
    await this.cancel();
    this.state = "closed";
    this.handler = undefined;
    if (!started) {
      return;
    }

    const unsettled = this.outstanding.values().filter((message) => this.outstandingRecord(message)?.settling === false);
    if (unsettled.length > 0) {
      this.logger.info({ queueName: this.queueName, count: unsettled.length }, `Returning ${unsettled.length} unacked message(s) to '${this.queueName}'.`);
      try {
        await this.requeue(unsettled);
      } catch (error) {
        this.logger.warn({ err: error, queueName: this.queueName }, `Failed to return unacked messages to '${this.queueName}'.`);
      }
    }

    const lastOfQueue = this.broker.consumersOf(this.queueName).every((consumer) => consumer === this);
    if (lastOfQueue) {
      await this.returnStranded();
    }
    this.broker.unregisterConsumer(this);
    this.logger.debug({ queueName: this.queueName }, `Closed the consumer of '${this.queueName}'.`);
  }

  private async returnStranded(): Promise<void> {
    try {
      const inFlight = new Set<string>();
      for (const message of this.outstanding.values()) {
        const record = this.outstandingRecord(message);
        if (record?.settling === true) {
          inFlight.add(record.redisMessageId);
        }
      }
      const stranded = (await this.broker.ackedIds(this.queueName)).filter((id) => !inFlight.has(id));
      if (stranded.length === 0) {
        return;
      }

      this.logger.info(
        { queueName: this.queueName, count: stranded.length },
        `Returning ${stranded.length} message(s) left in this broker's acks set to '${this.queueName}'.`,
      );
      await this.requeueIds(stranded);
    } catch (error) {
      this.logger.warn({ err: error, queueName: this.queueName }, `Failed to return the acks set of '${this.queueName}' to the queue.`);
    }
  }

  /** @internal Forgets every delivery, marking it abandoned; used by flush, after which acking it would do nothing. */
  abandonAll(): void {
    for (const message of this.outstanding.clear()) {
      message.abandoned = true;
    }
    this.wake();
  }

  /**
   * Returns the record of a message this consumer delivered and has not
   * settled, requeued or forgotten yet. Any other message gets undefined,
   * so it is never acked twice nor acked by the wrong consumer.
   */
  private outstandingRecord(message: MessageProxy): Outstanding | undefined {
    const record = message[consumerState];
    return record instanceof Outstanding && this.outstanding.has(record.entry) ? record : undefined;
  }
}

function describe(error: unknown): string {
  return toError(error).message;
}
