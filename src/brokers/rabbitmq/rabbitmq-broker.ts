/**
 * The RabbitMQ broker, wire-compatible with Python Dramatiq's: the same
 * queues and arguments, the same message properties, dead-lettering through
 * the queue's dead-letter exchange.
 *
 * Connections: constructing the broker never connects. The first publish,
 * consume or `connect()` opens what it needs. The broker keeps one
 * connection for publishing (with a publish channel and a channel for
 * declarations, purges and counts) and one connection shared by all its
 * consumers, one channel per consumed queue. Python Dramatiq opens one
 * connection per consumed queue instead. Sharing saves connections. The
 * publisher gets its own because RabbitMQ blocks publishing connections
 * under a memory or disk alarm, while consumers must keep acking to free
 * that memory. Lost connections are reopened with backoff.
 */

import type { Channel } from "amqplib";

import { Broker, type BrokerOptions, type ConsumeOptions, type JoinOptions } from "../../broker.js";
import type { Consumer } from "../../consumer.js";
import { BrokerError, ConfigurationError, QueueJoinTimeoutError } from "../../errors.js";
import type { Message } from "../../message/message.js";
import { canonicalQueueName, deadLetterQueueName, delayQueueName } from "../../message/queue-names.js";
import { ChannelSlot } from "./channel-slot.js";
import { ConnectionManager } from "./connection.js";
import { deadMessageTtlFromEnvironment, QueueDeclarer } from "./declaration.js";
import { Publisher } from "./publisher.js";
import { RabbitmqConsumer } from "./rabbitmq-consumer.js";
import { DEFAULT_URL, parseAmqpUrl, splitUrls, type AmqpEndpoint } from "./url.js";

/** Options of RabbitmqBroker. */
export interface RabbitmqBrokerOptions extends BrokerOptions {
  /**
   * amqp:// or amqps:// URL, or several for fail-over (an array, or one
   * string joined by ';'), tried in order. The URL's query may set
   * `heartbeat`, `channel_max`, `frame_max`, `socket_timeout` (seconds) and
   * `locale`; other pika query options are ignored with a warning.
   * @defaultValue "amqp://127.0.0.1:5672"
   */
  url?: string | readonly string[];
  /**
   * Publisher confirms with the mandatory flag: `send()` resolves only once
   * RabbitMQ has the message, and a message RabbitMQ cannot route makes the
   * broker declare the queues again and retry once. Without it a message
   * published just before a connection dies can be lost.
   * @defaultValue false
   */
  confirmDelivery?: boolean;
  /**
   * Declares `<q>` and `<q>.DQ` with x-max-priority (1..255), so that the
   * `brokerPriority` message option works. Must match every other declarer
   * of the queues, Python included, or declaring fails.
   * @defaultValue none
   */
  maxPriority?: number;
  /**
   * TTL of dead letters in `<q>.XQ`, in ms. Must equal every other
   * declarer's.
   * @defaultValue the environment variable dramatiq_dead_message_ttl, else 604800000 (7 days)
   */
  deadMessageTtl?: number;
  /** AMQP heartbeat in seconds; 0 disables it. @defaultValue the server's proposal (60 s by default) */
  heartbeat?: number;
  /**
   * Socket and TLS options passed to amqplib (ca, cert, key, servername,
   * timeout in ms for connecting…).
   */
  socketOptions?: Record<string, unknown>;
  /** First delay between reconnect attempts, in ms; it doubles up to maxReconnectDelay. @defaultValue 100 */
  minReconnectDelay?: number;
  /** Maximum delay between reconnect attempts, in ms. @defaultValue 5000 */
  maxReconnectDelay?: number;
  /**
   * Connection attempts (each over all URLs) that `connect()`, a publish
   * and a starting consumer make before failing with ConnectionFailedError.
   * Running consumers that lose their connection retry until stopped.
   * @defaultValue 5
   */
  connectionAttempts?: number;
  /**
   * Largest message body in bytes that `send()` accepts; a larger one is
   * rejected with a ConfigurationError instead of being dropped by the
   * server. Keep it equal to the server's max_message_size.
   * @defaultValue RabbitMQ's default for the connected server: 128 MiB before 4.0, 16 MiB from 4.0
   */
  maxMessageSize?: number;
}

/** Milliseconds between queue counts in `join()`. */
const JOIN_POLL_INTERVAL = 100;

export class RabbitmqBroker extends Broker {
  /** The configured URL(s), joined by ';'. Contains passwords: log `redactedUrl` instead. */
  readonly url: string;
  /** The configured URLs, in fail-over order. */
  readonly urls: readonly string[];
  /** The URL(s) with passwords replaced by `***`. */
  readonly redactedUrl: string;
  readonly confirmDelivery: boolean;
  readonly maxPriority: number | undefined;
  readonly deadMessageTtl: number;
  readonly connectionAttempts: number;
  readonly minReconnectDelay: number;
  readonly maxReconnectDelay: number;
  /** Configured body size limit in bytes, or undefined to follow the server version's default. */
  readonly maxMessageSize: number | undefined;

  private readonly declarer: QueueDeclarer;
  private readonly publisherConnection: ConnectionManager;
  private readonly consumerConnection: ConnectionManager;
  private readonly admin: ChannelSlot<Channel>;
  private readonly publisher: Publisher;
  private readonly consumers = new Set<RabbitmqConsumer>();
  private closing: Promise<void> | undefined;

  constructor(options: RabbitmqBrokerOptions = {}) {
    super(options);
    this.urls = splitUrls(options.url ?? DEFAULT_URL);
    this.url = this.urls.join(";");
    this.confirmDelivery = options.confirmDelivery ?? false;
    this.maxPriority = validateMaxPriority(options.maxPriority);
    this.deadMessageTtl = options.deadMessageTtl === undefined ? deadMessageTtlFromEnvironment() : validateTtl(options.deadMessageTtl);
    this.connectionAttempts = validateInteger("connectionAttempts", options.connectionAttempts ?? 5, 1);
    this.minReconnectDelay = validateInteger("minReconnectDelay", options.minReconnectDelay ?? 100, 1);
    this.maxReconnectDelay = validateInteger("maxReconnectDelay", options.maxReconnectDelay ?? 5000, this.minReconnectDelay);
    this.maxMessageSize = options.maxMessageSize === undefined ? undefined : validateInteger("maxMessageSize", options.maxMessageSize, 1);
    const heartbeat = validateHeartbeat(options.heartbeat);

    const endpointsFor = (role: string): AmqpEndpoint[] =>
      this.urls.map((url) =>
        parseAmqpUrl(url, {
          ...(heartbeat === undefined ? {} : { heartbeat }),
          ...(options.socketOptions === undefined ? {} : { socketOptions: options.socketOptions }),
          connectionName: `melodramatiq ${role} (pid ${process.pid})`,
        }),
      );
    const publisherEndpoints = endpointsFor("publisher");
    this.redactedUrl = publisherEndpoints.map((endpoint) => endpoint.redactedUrl).join(";");
    this.warnAboutIgnoredQueryOptions(publisherEndpoints);

    const connectionOptions = {
      connectionAttempts: this.connectionAttempts,
      minReconnectDelay: this.minReconnectDelay,
      maxReconnectDelay: this.maxReconnectDelay,
      logger: this.logger,
    };
    this.publisherConnection = new ConnectionManager({ ...connectionOptions, role: "publisher", endpoints: publisherEndpoints });
    this.consumerConnection = new ConnectionManager({ ...connectionOptions, role: "consumer", endpoints: endpointsFor("consumer") });
    this.declarer = new QueueDeclarer({ maxPriority: this.maxPriority, deadMessageTtl: this.deadMessageTtl });
    this.admin = new ChannelSlot(this.publisherConnection, async (model) => model.createChannel(), "admin", this.logger);
    this.publisher = new Publisher(this.publisherConnection, this.admin, this.declarer, {
      confirmDelivery: this.confirmDelivery,
      maxMessageSize: this.maxMessageSize,
      minReconnectDelay: this.minReconnectDelay,
      maxReconnectDelay: this.maxReconnectDelay,
      logger: this.logger,
    });
  }

  /**
   * Opens the publisher connection and a channel on it, which checks the
   * address, credentials and vhost. Rejects with ConnectionFailedError,
   * naming the URL without its password, after `connectionAttempts` failed
   * attempts.
   */
  override async connect(): Promise<void> {
    await this.admin.get();
  }

  protected override async publish(message: Message): Promise<void> {
    await this.publisher.publish({
      queueName: message.queueName,
      body: message.encode(),
      priority: brokerPriority(message),
      messageId: message.messageId,
      actorName: message.actorName,
    });
  }

  /** Returns a consumer of `queueName` (`<q>` or `<q>.DQ`) on the shared consumer connection. */
  override consume(queueName: string, options: ConsumeOptions): Consumer {
    const prefetch = validateInteger("prefetch", options.prefetch, 1, 65535);
    this.declareQueue(canonicalQueueName(queueName));

    const consumer = new RabbitmqConsumer(
      {
        connections: this.consumerConnection,
        declarer: this.declarer,
        minReconnectDelay: this.minReconnectDelay,
        maxReconnectDelay: this.maxReconnectDelay,
        logger: this.logger,
        onClosed: (closed) => {
          this.consumers.delete(closed);
        },
      },
      queueName,
      prefetch,
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /** Purges `<q>` and `<q>.DQ`, declaring them first if this connection has not. */
  override async flush(queueName: string): Promise<void> {
    const canonical = canonicalQueueName(queueName);
    const channel = await this.declaredAdminChannel(canonical);
    await channel.purgeQueue(canonical);
    await channel.purgeQueue(delayQueueName(canonical));
    await channel.purgeQueue(deadLetterQueueName(canonical));
  }

  /** Purges every declared queue, its delay queue and its dead-letter queue. */
  override async flushAll(): Promise<void> {
    for (const queueName of this.getDeclaredQueues()) {
      const channel = await this.declaredAdminChannel(queueName);
      await channel.purgeQueue(queueName);
      await channel.purgeQueue(delayQueueName(queueName));
      await channel.purgeQueue(deadLetterQueueName(queueName));
    }
  }

  /**
   * Waits until `<q>` and `<q>.DQ` both hold no ready message, polling their
   * counts every 100 ms. With `failFast` (the default) it rejects with a
   * BrokerError as soon as `<q>.XQ` contains more messages than when the
   * call began. After `timeout` ms it rejects with QueueJoinTimeoutError.
   *
   * RabbitMQ counts only messages ready for delivery. Messages delivered and
   * not yet acked (running, or delayed messages waiting for their eta in a
   * worker) are not counted, so join() can return while they are still in
   * progress.
   * Python Dramatiq's join has the same limit.
   */
  override async queueDepth(queueName: string): Promise<number> {
    const channel = await this.declaredAdminChannel(canonicalQueueName(queueName));
    return (await channel.checkQueue(queueName)).messageCount;
  }

  override async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const { timeout, failFast = true } = options;
    const canonical = canonicalQueueName(queueName);
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    let deadBefore: number | undefined;

    for (;;) {
      const channel = await this.declaredAdminChannel(canonical);
      const waiting = (await channel.checkQueue(canonical)).messageCount;
      const delayed = (await channel.checkQueue(delayQueueName(canonical))).messageCount;
      const dead = (await channel.checkQueue(deadLetterQueueName(canonical))).messageCount;
      deadBefore ??= dead;

      if (failFast && dead > deadBefore) {
        throw new BrokerError(
          `A message of queue '${canonical}' was dead-lettered while joining (${deadLetterQueueName(canonical)} went from ` +
            `${deadBefore} to ${dead} messages); read it from that queue, or pass failFast: false to wait anyway.`,
        );
      }
      if (waiting === 0 && delayed === 0) {
        return;
      }
      if (deadline !== undefined && Date.now() >= deadline) {
        throw new QueueJoinTimeoutError(
          `Timed out after ${timeout} ms waiting for queue '${canonical}': ${waiting} message(s) ready in '${canonical}' ` +
            `and ${delayed} in '${delayQueueName(canonical)}'.`,
        );
      }

      await new Promise((resolve) => setTimeout(resolve, JOIN_POLL_INTERVAL));
    }
  }

  /**
   * Closes every consumer, the channels and both connections, and stops
   * reconnecting. Calling it again while it runs returns the same promise.
   * The broker stays usable: the next publish or consume connects again.
   */
  override async close(): Promise<void> {
    this.closing ??= this.closeAll().finally(() => {
      this.closing = undefined;
    });
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    const consumers = [...this.consumers];
    this.consumers.clear();
    await Promise.all(consumers.map(async (consumer) => consumer.close()));
    await this.publisher.close();
    await this.admin.close();
    await Promise.all([this.publisherConnection.close(), this.consumerConnection.close()]);
    this.logger.debug({ url: this.redactedUrl }, "Closed the RabbitMQ broker's connections.");
  }

  /** Returns the admin channel after making sure the queue set of `queueName` is declared on its connection. */
  private async declaredAdminChannel(queueName: string): Promise<Channel> {
    const admin = await this.admin.get();
    await this.declarer.declare(admin.model, admin.channel, queueName);
    return admin.channel;
  }

  private warnAboutIgnoredQueryOptions(endpoints: readonly AmqpEndpoint[]): void {
    for (const endpoint of endpoints) {
      if (endpoint.ignoredQueryOptions.length > 0) {
        this.logger.warn(
          { url: endpoint.redactedUrl, options: endpoint.ignoredQueryOptions },
          `Ignoring the query option(s) ${endpoint.ignoredQueryOptions.join(", ")} of RabbitMQ URL ${endpoint.redactedUrl}; ` +
            "use the broker options connectionAttempts, minReconnectDelay, maxReconnectDelay and socketOptions instead.",
        );
      }
    }
  }
}

/**
 * Returns the AMQP priority for a message: its `broker_priority` option, or
 * undefined when the option is absent or null. Throws a ConfigurationError
 * for a value outside 0..255.
 */
function brokerPriority(message: Message): number | undefined {
  const value = message.options["broker_priority"];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new ConfigurationError(
      `Invalid brokerPriority ${JSON.stringify(value)} on message '${message.messageId}': it must be a whole number from 0 to 255.`,
    );
  }
  return value;
}

function validateMaxPriority(value: number | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  return validateInteger("maxPriority", value, 1, 255);
}

function validateTtl(value: number): number {
  return validateInteger("deadMessageTtl", value, 0, Number.MAX_SAFE_INTEGER);
}

function validateHeartbeat(value: number | undefined): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  return validateInteger("heartbeat", value, 0, 65535);
}

function validateInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new ConfigurationError(`Invalid RabbitmqBroker option ${name}=${String(value)}: it must be a whole number ${range}.`);
  }
  return value;
}
