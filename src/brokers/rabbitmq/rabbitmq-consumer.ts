/**
 * The consumer of one RabbitMQ queue: a channel with basic.qos(prefetch,
 * per consumer) and a basic.consume with manual acks.
 *
 * States:
 *
 *     new ──start()──▶ consuming ──channel lost──▶ recovering ──reopened──▶ consuming
 *                          │                          │
 *                       cancel()                   cancel()        close() from any state ──▶ closed
 *                          ▼                          ▼
 *                      cancelled ◀────────────────────┘
 *
 * When the channel or its connection is lost, every delivery received on it
 * is marked `abandoned`: RabbitMQ delivers those messages again, and an ack
 * of an old delivery tag on a new channel would make RabbitMQ close that
 * channel ("unknown delivery tag"). The consumer then reopens the channel,
 * declares the queues again and resumes consuming, with backoff, until it
 * succeeds or is cancelled or closed.
 */

import type { Channel, ConsumeMessage } from "amqplib";

import type { Consumer, DeliveryHandler } from "../../consumer.js";
import { ConfigurationError, ConnectionClosedError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { Message } from "../../message/message.js";
import { canonicalQueueName } from "../../message/queue-names.js";
import { InFlightList } from "../../worker/in-flight-list.js";
import { consumerState, MessageProxy } from "../../worker/message-proxy.js";
import { closeChannel } from "./channel-slot.js";
import { CLOSE_TIMEOUT, errorMessage, reconnectDelay, settlesWithin, sleepUnlessClosed, type ConnectionManager } from "./connection.js";
import type { QueueDeclarer } from "./declaration.js";

/** Broker resources and settings that a consumer uses. */
export interface ConsumerContext {
  /** The connection all consumers of the broker share, one channel each. */
  readonly connections: ConnectionManager;
  readonly declarer: QueueDeclarer;
  readonly minReconnectDelay: number;
  readonly maxReconnectDelay: number;
  readonly logger: Logger;
  /** Called once when the consumer closes, so the broker stops tracking it. */
  readonly onClosed: (consumer: RabbitmqConsumer) => void;
}

type ConsumerState = "new" | "consuming" | "recovering" | "cancelled" | "closed";

export class RabbitmqConsumer implements Consumer {
  private state: ConsumerState = "new";
  private handler: DeliveryHandler | undefined;
  private channel: Channel | undefined;
  private consumerTag: string | undefined;
  /**
   * Deliveries of the current channel handed to the handler and not yet
   * acked, nacked or requeued, in delivery order, which is ascending
   * delivery-tag order.
   */
  private readonly outstanding = new InFlightList<MessageProxy>();
  /** Deliveries of the current channel that the worker acked; their basic.ack goes out with the next flush. */
  private pendingAcks: ConsumeMessage[] = [];
  private ackFlushScheduled = false;
  /** Aborted by cancel() and close(), which ends recovery waits. */
  private readonly stopped = new AbortController();

  constructor(
    private readonly context: ConsumerContext,
    readonly queueName: string,
    private readonly prefetch: number,
  ) {}

  /** Messages delivered and not yet acked, nacked or requeued. */
  get outstandingCount(): number {
    return this.outstanding.size;
  }

  /**
   * Opens the channel, declares the queues and starts consuming. Rejects
   * with ConnectionFailedError when no connection can be opened within the
   * broker's connection attempts, and with ConfigurationError when the
   * queues exist with other arguments.
   */
  async start(handler: DeliveryHandler): Promise<void> {
    if (this.state !== "new") {
      throw new ConfigurationError(`The consumer of '${this.queueName}' was already started; ask the broker for a new one.`);
    }

    this.handler = handler;
    this.state = "consuming";
    try {
      await this.open(this.context.connections.connectionAttempts);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.context.logger.debug({ queueName: this.queueName, prefetch: this.prefetch }, `Consuming '${this.queueName}'.`);
  }

  async ack(message: MessageProxy): Promise<void> {
    this.settle(message, "ack");
  }

  async nack(message: MessageProxy): Promise<void> {
    this.settle(message, "nack");
  }

  /** Returns messages to the head of the queue at once with basic.nack(requeue=true). */
  async requeue(messages: readonly MessageProxy[]): Promise<void> {
    for (const message of messages) {
      this.settle(message, "requeue");
    }
  }

  /** Stops deliveries with basic.cancel; acks and nacks of delivered messages still work. */
  async cancel(): Promise<void> {
    if (this.state === "cancelled" || this.state === "closed") {
      return;
    }

    this.state = "cancelled";
    this.stopped.abort();
    const { channel, consumerTag } = this;
    if (channel !== undefined && consumerTag !== undefined) {
      await this.cancelConsumer(channel, consumerTag);
    }
  }

  /**
   * Closes the channel. RabbitMQ returns its unacked messages to the queue,
   * so they are marked abandoned here.
   */
  async close(): Promise<void> {
    if (this.state === "closed") {
      return;
    }

    this.state = "closed";
    this.stopped.abort();
    // Acks still pending would otherwise be lost with the channel and their messages processed twice.
    this.flushAcks();
    const channel = this.channel;
    this.forgetChannel();
    if (channel !== undefined) {
      await closeChannel(channel);
    }
    this.context.onClosed(this);
  }

  /**
   * Opens a channel and starts consuming on it, trying to connect up to
   * `attempts` times. A recovering consumer becomes consuming here, in the
   * same step that records the consumer tag.
   */
  private async open(attempts: number): Promise<void> {
    const { connections, declarer, logger } = this.context;
    const model = await connections.connection(attempts);
    const channel = await model.createChannel();
    if (this.state === "closed") {
      await closeChannel(channel);
      throw new ConnectionClosedError(`The consumer of '${this.queueName}' was closed while it was starting.`);
    }

    // A channel error (e.g. a consumer ack timeout) is followed by 'close',
    // which recovers; without an 'error' listener amqplib would crash the process.
    channel.on("error", (error: Error) => {
      logger.warn({ err: error, queueName: this.queueName }, `RabbitMQ closed the channel of consumer '${this.queueName}': ${error.message}`);
    });
    channel.on("close", () => {
      this.onChannelClosed(channel);
    });

    // Set before basic.consume: deliveries can arrive in the same read as
    // consume-ok, before the await below returns.
    this.channel = channel;
    let tag: string;
    try {
      await channel.prefetch(this.prefetch, false);
      await declarer.declare(model, channel, canonicalQueueName(this.queueName));
      const reply = await channel.consume(
        this.queueName,
        (delivery) => {
          this.onDelivery(channel, delivery);
        },
        { noAck: false },
      );
      tag = reply.consumerTag;
    } catch (error) {
      if (this.channel === channel) {
        this.forgetChannel();
      }
      await closeChannel(channel);
      throw error;
    }

    if (this.channel !== channel) {
      throw new ConnectionClosedError(`The channel of consumer '${this.queueName}' closed while it was starting.`);
    }

    this.consumerTag = tag;
    if (this.state === "recovering") {
      this.state = "consuming";
    } else if (this.state === "cancelled") {
      await this.cancelConsumer(channel, tag);
    }
  }

  private onDelivery(channel: Channel, delivery: ConsumeMessage | null): void {
    if (delivery === null) {
      // RabbitMQ cancelled the consumer, e.g. because the queue was deleted.
      this.context.logger.warn({ queueName: this.queueName }, `RabbitMQ cancelled the consumer of '${this.queueName}'; consuming again.`);
      const model = this.context.connections.openConnection;
      if (model !== undefined) {
        this.context.declarer.forget(model, canonicalQueueName(this.queueName));
      }
      void closeChannel(channel);
      return;
    }

    if (channel !== this.channel) {
      return;
    }

    let message: Message;
    try {
      message = Message.decode(delivery.content);
    } catch (error) {
      this.deadLetterUndecodable(channel, delivery, error);
      return;
    }

    if (this.state === "cancelled") {
      // Sent by RabbitMQ before it processed basic.cancel: return it at once.
      this.reject(channel, delivery, true);
      return;
    }

    const proxy = new MessageProxy(message, this.queueName, delivery);
    // The proxy keeps its place among the outstanding deliveries, which settling removes.
    proxy[consumerState] = this.outstanding.add(proxy);
    try {
      this.handler?.(proxy);
    } catch (error) {
      this.context.logger.error(
        { err: error, queueName: this.queueName, messageId: proxy.messageId, actorName: proxy.actorName },
        `The delivery handler of '${this.queueName}' threw for message '${proxy.messageId}'.`,
      );
    }
  }

  /** Nacks a body that is not a valid message, so RabbitMQ dead-letters it to `<q>.XQ`; it never reaches the handler. */
  private deadLetterUndecodable(channel: Channel, delivery: ConsumeMessage, error: unknown): void {
    this.context.logger.error(
      { err: error, queueName: this.queueName, deliveryTag: delivery.fields.deliveryTag },
      `Failed to decode a message on '${this.queueName}': ${errorMessage(error)} Moving it to the dead-letter queue.`,
    );
    this.reject(channel, delivery, false);
  }

  private settle(message: MessageProxy, outcome: "ack" | "nack" | "requeue"): void {
    // A message not outstanding was settled already, belongs to a lost
    // channel or to another consumer; its delivery tag must not reach the
    // current channel.
    const entry = message[consumerState];
    if (!this.outstanding.has(entry)) {
      return;
    }
    this.outstanding.remove(entry);

    const channel = this.channel;
    const delivery = message.delivery as ConsumeMessage;
    if (channel === undefined) {
      message.abandoned = true;
      return;
    }

    if (outcome === "ack") {
      this.pendingAcks.push(delivery);
      this.scheduleAckFlush();
    } else if (!this.reject(channel, delivery, outcome === "requeue")) {
      message.abandoned = true;
    }
  }

  /** Sends basic.nack for one delivery; returns false when the channel is already closed. */
  private reject(channel: Channel, delivery: ConsumeMessage, requeue: boolean): boolean {
    try {
      channel.nack(delivery, false, requeue);
      return true;
    } catch (error) {
      this.context.logger.debug(
        { err: error, queueName: this.queueName, deliveryTag: delivery.fields.deliveryTag },
        `Could not nack a delivery on '${this.queueName}' because its channel is closed; RabbitMQ delivers it again.`,
      );
      return false;
    }
  }

  /**
   * Acks are written once per event-loop turn rather than one frame per
   * message: every ack settled in the same turn goes out together, mostly
   * as a single basic.ack with `multiple`, which saves a socket write and a
   * frame for RabbitMQ to process per message.
   */
  private scheduleAckFlush(): void {
    if (this.ackFlushScheduled) {
      return;
    }
    this.ackFlushScheduled = true;
    setImmediate(() => {
      this.ackFlushScheduled = false;
      this.flushAcks();
    });
  }

  /**
   * Writes the pending acks. A basic.ack with `multiple` acks every
   * delivery up to its tag, so it may only cover tags below the oldest
   * delivery the worker still holds, which are all settled. Acks above that
   * tag go out one by one.
   */
  private flushAcks(): void {
    const acks = this.pendingAcks;
    const channel = this.channel;
    this.pendingAcks = [];
    if (acks.length === 0 || channel === undefined) {
      return;
    }

    acks.sort((a, b) => a.fields.deliveryTag - b.fields.deliveryTag);
    const oldestHeld = this.oldestOutstandingTag();
    let covered = 0;
    while (covered < acks.length && (acks[covered]?.fields.deliveryTag ?? Infinity) < oldestHeld) {
      covered += 1;
    }

    try {
      const last = acks[covered - 1];
      if (last !== undefined) {
        channel.ack(last, covered > 1);
      }
      for (let index = covered; index < acks.length; index += 1) {
        const delivery = acks[index];
        if (delivery !== undefined) {
          channel.ack(delivery);
        }
      }
    } catch (error) {
      // The channel closed after the worker acked; RabbitMQ delivers these messages again.
      this.context.logger.warn(
        { err: error, queueName: this.queueName, count: acks.length },
        `Could not ack ${acks.length} message(s) on '${this.queueName}' because the channel is closed; RabbitMQ delivers them again.`,
      );
    }
  }

  /** Tag of the oldest delivery not yet settled, or Infinity when none is. */
  private oldestOutstandingTag(): number {
    const oldest = this.outstanding.first?.delivery as ConsumeMessage | undefined;
    return oldest?.fields.deliveryTag ?? Infinity;
  }

  private onChannelClosed(channel: Channel): void {
    if (channel !== this.channel) {
      return;
    }

    // Without a consumer tag the channel was still being set up, and open()
    // reports the failure to its caller.
    const started = this.consumerTag !== undefined;
    const abandoned = this.forgetChannel();
    if (this.state !== "consuming" || !started) {
      return;
    }

    this.context.logger.warn(
      { queueName: this.queueName, abandoned },
      `Lost the channel of consumer '${this.queueName}'; ${abandoned} unacked message(s) will be delivered again. Reconnecting.`,
    );
    this.state = "recovering";
    void this.recover();
  }

  /** Reopens the channel with backoff until it works or the consumer is cancelled or closed. */
  private async recover(): Promise<void> {
    const { logger, minReconnectDelay, maxReconnectDelay } = this.context;

    // NOTE: this retries for as long as the worker runs, as Python
    // Dramatiq's consumers do. Each wait is at most maxReconnectDelay ms, and
    // cancel() or close() end the loop.
    for (let attempt = 1; this.state === "recovering"; attempt++) {
      const delay = reconnectDelay(attempt - 1, minReconnectDelay, maxReconnectDelay);
      try {
        await sleepUnlessClosed(delay, this.stopped.signal, `consumer of '${this.queueName}'`);
        await this.open(1);
      } catch (error) {
        if (this.stopped.signal.aborted) {
          return;
        }
        logger.warn(
          { err: error, queueName: this.queueName, attempt },
          `Failed to resume consuming '${this.queueName}' (attempt ${attempt}): ${errorMessage(error)}`,
        );
        continue;
      }

      // open() may have changed the state; TypeScript still narrows it to "recovering".
      if ((this.state as ConsumerState) === "consuming") {
        logger.info({ queueName: this.queueName, attempt }, `Resumed consuming '${this.queueName}' after ${attempt} attempt(s).`);
      }
      return;
    }
  }

  /** Sends basic.cancel, waiting at most CLOSE_TIMEOUT ms for the reply. */
  private async cancelConsumer(channel: Channel, tag: string | undefined): Promise<void> {
    if (tag === undefined) {
      return;
    }

    const cancelled = channel.cancel(tag).catch((error: unknown) => {
      // The channel is gone, and with it the consumer.
      this.context.logger.debug({ err: error, queueName: this.queueName }, `Could not cancel the consumer of '${this.queueName}': ${errorMessage(error)}`);
    });
    if (!(await settlesWithin(cancelled, CLOSE_TIMEOUT))) {
      this.context.logger.warn(
        { queueName: this.queueName },
        `RabbitMQ did not confirm cancelling the consumer of '${this.queueName}' within ${CLOSE_TIMEOUT} ms; going on without it.`,
      );
    }
  }

  /** Drops the current channel and marks its outstanding deliveries abandoned; returns how many there were. */
  private forgetChannel(): number {
    const abandoned = this.outstanding.clear();
    for (const message of abandoned) {
      message.abandoned = true;
    }
    // Acks of a lost channel cannot be sent on the next one; RabbitMQ delivers those messages again.
    this.pendingAcks = [];
    this.channel = undefined;
    this.consumerTag = undefined;
    return abandoned.length;
  }
}
