/**
 * Publishing to RabbitMQ: one channel per broker, declared queues, channel
 * backpressure, optional publisher confirms with the mandatory flag, and
 * bounded retries on a fresh channel and connection.
 *
 * Messages go to the default exchange "" with the queue name as routing key
 * and carry only `delivery_mode = 2` and, for a message with the
 * `broker_priority` option, `priority`: the AMQP properties Python Dramatiq
 * publishes, and nothing else.
 */

import type { Channel, ChannelModel, ConfirmChannel, Message as AmqpMessage } from "amqplib";

import {
  ConfigurationError,
  ConnectionClosedError,
  ConnectionFailedError,
  QueueNotFoundError,
  toError,
} from "../../errors.js";
import type { Logger } from "../../logger.js";
import { canonicalQueueName } from "../../message/queue-names.js";
import { ChannelSlot, type OpenChannel } from "./channel-slot.js";
import { errorMessage, reconnectDelay, sleepUnlessClosed, type ConnectionManager } from "./connection.js";
import type { QueueDeclarer } from "./declaration.js";

/** Publish attempts in total, each after reopening what failed; the same number as Python Dramatiq. */
export const PUBLISH_ATTEMPTS = 6;

/** One message to publish. */
export interface PublishRequest {
  /** Routing key: `<q>` or `<q>.DQ`, always the body's `queue_name`. */
  readonly queueName: string;
  readonly body: Buffer;
  /** AMQP priority (0..255), only for messages with the `broker_priority` option. */
  readonly priority: number | undefined;
  /** For log lines and errors. */
  readonly messageId: string;
  readonly actorName: string;
}

/** Options of a Publisher. */
export interface PublisherOptions {
  readonly confirmDelivery: boolean;
  /** Largest body in bytes; undefined follows the server version's default limit. */
  readonly maxMessageSize: number | undefined;
  readonly minReconnectDelay: number;
  readonly maxReconnectDelay: number;
  readonly logger: Logger;
}

/** A publish waiting for its confirm, kept to match a basic.return to it. */
interface PendingConfirm {
  readonly routingKey: string;
  readonly body: Buffer;
  returned: boolean;
}

/** Per-channel state: backpressure and publishes awaiting confirms. */
interface ChannelState {
  /** Resolves when the channel's write buffer has drained (or the channel closed). */
  drained: Promise<void> | undefined;
  readonly unconfirmed: Set<PendingConfirm>;
}

/** RabbitMQ returned a mandatory message because no queue is bound to its routing key. */
class UnroutableError extends Error {
  override name = "UnroutableError";
}

export class Publisher {
  private readonly slot: ChannelSlot<Channel>;
  private readonly states = new WeakMap<Channel, ChannelState>();
  /** Aborted by `close()`, which ends backoff waits between attempts. */
  private lifetime = new AbortController();

  constructor(
    private readonly connections: ConnectionManager,
    private readonly admin: ChannelSlot<Channel>,
    private readonly declarer: QueueDeclarer,
    private readonly options: PublisherOptions,
  ) {
    const create = options.confirmDelivery
      ? async (model: ChannelModel): Promise<Channel> => model.createConfirmChannel()
      : async (model: ChannelModel): Promise<Channel> => model.createChannel();
    this.slot = new ChannelSlot(connections, create, "publish", options.logger, (open) => {
      this.watch(open.channel);
    });
  }

  /**
   * Publishes one message. Resolves once it is written to the socket, or,
   * with confirmDelivery, once RabbitMQ has confirmed it.
   *
   * @throws ConnectionFailedError when no connection can be opened.
   * @throws ConnectionClosedError after PUBLISH_ATTEMPTS failed attempts.
   * @throws QueueNotFoundError when RabbitMQ returns the message as unroutable even after declaring the queues again.
   * @throws ConfigurationError when the queues exist with other arguments.
   */
  async publish(request: PublishRequest): Promise<void> {
    const queueName = canonicalQueueName(request.queueName);
    const signal = this.lifetime.signal;
    let redeclared = false;
    let lastError: unknown;

    for (let attempt = 1; attempt <= PUBLISH_ATTEMPTS; attempt++) {
      let model: ChannelModel | undefined;
      try {
        const open = await this.slot.get();
        model = open.model;
        this.checkSize(open.model, request);
        await this.ensureDeclared(open.model, queueName);
        await this.send(open, request);
        return;
      } catch (error) {
        if (error instanceof UnroutableError && !redeclared && model !== undefined) {
          // The queue was deleted after this connection declared it.
          this.options.logger.warn(
            { messageId: request.messageId, actorName: request.actorName, queueName: request.queueName },
            `RabbitMQ returned message '${request.messageId}' as unroutable; declaring '${queueName}' again and retrying.`,
          );
          redeclared = true;
          this.declarer.forget(model, queueName);
          attempt -= 1; // The retry after declaring again does not count as an attempt.
          continue;
        }
        if (signal.aborted || !isRetriable(error)) {
          throw this.finalError(error, request);
        }

        lastError = error;
        if (attempt < PUBLISH_ATTEMPTS) {
          const delay = reconnectDelay(attempt - 1, this.options.minReconnectDelay, this.options.maxReconnectDelay);
          this.options.logger.warn(
            { err: error, messageId: request.messageId, actorName: request.actorName, queueName: request.queueName, attempt },
            `Failed to publish message '${request.messageId}' to '${request.queueName}' ` +
              `(attempt ${attempt} of ${PUBLISH_ATTEMPTS}): ${errorMessage(error)}. Retrying in ${delay} ms.`,
          );
          await sleepUnlessClosed(delay, signal, "publisher");
        }
      }
    }

    throw new ConnectionClosedError(
      `Failed to publish message '${request.messageId}' (actor '${request.actorName}') to '${request.queueName}' ` +
        `after ${PUBLISH_ATTEMPTS} attempts: ${errorMessage(lastError)}`,
      { cause: lastError },
    );
  }

  /**
   * Rejects a body larger than RabbitMQ accepts. The server would close the
   * channel, which without confirms loses the message silently and with
   * confirms looks like a connection problem that retrying cannot fix.
   */
  private checkSize(model: ChannelModel, request: PublishRequest): void {
    const limit = this.options.maxMessageSize ?? defaultMaxMessageSize(model);
    if (request.body.length <= limit) {
      return;
    }

    throw new ConfigurationError(
      `Message '${request.messageId}' (actor '${request.actorName}') is ${request.body.length} bytes, larger than the ` +
        `${limit} bytes RabbitMQ accepts: send a reference to the data (a URL or a key) instead of the data, ` +
        "or raise the server's max_message_size and the broker's maxMessageSize together.",
    );
  }

  /** Declares the queue set of `queueName` on `model` unless done already. */
  async ensureDeclared(model: ChannelModel, queueName: string): Promise<void> {
    if (this.declarer.isDeclared(model, queueName)) {
      return;
    }

    const admin = await this.admin.get();
    await this.declarer.declare(admin.model, admin.channel, queueName);
    if (admin.model !== model) {
      // The connection was replaced in between; the caller's channel is dead.
      throw new ConnectionClosedError("The publisher connection was replaced while declaring queues.");
    }
  }

  /** Closes the publish channel and ends pending retry waits. Later publishes open a new channel. */
  async close(): Promise<void> {
    this.lifetime.abort();
    this.lifetime = new AbortController();
    await this.slot.close();
  }

  private async send(open: OpenChannel<Channel>, request: PublishRequest): Promise<void> {
    const { channel } = open;
    const state = this.states.get(channel);
    if (state?.drained !== undefined) {
      await state.drained;
    }

    if (!this.options.confirmDelivery) {
      const written = writeMessage(channel, request, false, undefined);
      if (!written) {
        await this.waitForDrain(channel);
      }
      return;
    }

    await new Promise<void>((resolve, reject) => {
      const pending: PendingConfirm = { routingKey: request.queueName, body: request.body, returned: false };
      state?.unconfirmed.add(pending);
      const confirmed = (error: unknown): void => {
        state?.unconfirmed.delete(pending);
        if (error !== null && error !== undefined) {
          reject(toError(error));
        } else if (pending.returned) {
          reject(new UnroutableError(`RabbitMQ returned message '${request.messageId}': no queue '${request.queueName}'.`));
        } else {
          resolve();
        }
      };

      try {
        if (!writeMessage(channel, request, true, confirmed)) {
          void this.waitForDrain(channel);
        }
      } catch (error) {
        state?.unconfirmed.delete(pending);
        reject(toError(error));
      }
    });
  }

  /** Registers the listeners a publish channel needs: returns and drain bookkeeping. */
  private watch(channel: Channel): void {
    const state: ChannelState = { drained: undefined, unconfirmed: new Set() };
    this.states.set(channel, state);

    // RabbitMQ sends basic.return before the confirm of the same message, so
    // `returned` is already set when the confirm callback runs.
    channel.on("return", (returned: AmqpMessage) => {
      for (const pending of state.unconfirmed) {
        if (!pending.returned && pending.routingKey === returned.fields.routingKey && pending.body.equals(returned.content)) {
          pending.returned = true;
          return;
        }
      }
    });
  }

  /** Returns a promise for the channel's next 'drain' (or 'close'), shared by all publishes waiting on it. */
  private waitForDrain(channel: Channel): Promise<void> {
    const state = this.states.get(channel);
    if (state === undefined) {
      return Promise.resolve();
    }

    state.drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        channel.off("drain", done);
        channel.off("close", done);
        state.drained = undefined;
        resolve();
      };
      channel.on("drain", done);
      channel.on("close", done);
    });
    return state.drained;
  }

  private finalError(error: unknown, request: PublishRequest): unknown {
    if (error instanceof UnroutableError) {
      return new QueueNotFoundError(
        `RabbitMQ returned message '${request.messageId}' as unroutable twice: queue '${request.queueName}' ` +
          "does not exist even after declaring it again. Check that nothing deletes the queue.",
        { cause: error },
      );
    }
    return error;
  }
}

/**
 * Returns RabbitMQ's default max_message_size for the connected server:
 * 128 MiB before 4.0 and 16 MiB from 4.0 on, per RabbitMQ's release notes.
 */
function defaultMaxMessageSize(model: ChannelModel): number {
  const version = (model.connection.serverProperties as { version?: unknown }).version;
  const major = typeof version === "string" ? Number.parseInt(version, 10) : Number.NaN;
  return Number.isFinite(major) && major >= 4 ? 16 * 1024 * 1024 : 128 * 1024 * 1024;
}

/**
 * Reports whether another attempt may succeed. It may after a lost channel,
 * a lost connection or a nack, but not after a configuration error or
 * exhausted connection attempts.
 */
function isRetriable(error: unknown): boolean {
  return !(error instanceof ConfigurationError || error instanceof ConnectionFailedError || error instanceof QueueNotFoundError);
}

/** amqplib's internal frame writer: `publish()` calls it after adding an empty headers table. */
interface RawChannel {
  sendMessage?: (fields: object, properties: object, content: Buffer) => boolean;
  pushConfirmCallback?: (callback: (error: unknown) => void) => void;
}

/**
 * Writes one basic.publish with only the properties Python Dramatiq sends.
 * amqplib's public `publish()` always adds an empty `headers` table, which a
 * consumer receives as `{}` instead of no headers, so this calls the frame
 * writer under it when available. Returns false when the channel's buffer
 * is full and the caller should wait for 'drain'.
 */
function writeMessage(
  channel: Channel,
  request: PublishRequest,
  mandatory: boolean,
  confirmed: ((error: unknown) => void) | undefined,
): boolean {
  const raw = channel as unknown as RawChannel;
  const { sendMessage, pushConfirmCallback } = raw;

  // NOTE: sendMessage and pushConfirmCallback are amqplib 2.x internals. If
  // a later version drops them, this falls back to publish(), whose only
  // difference on the wire is the empty headers table.
  if (typeof sendMessage === "function" && (confirmed === undefined || typeof pushConfirmCallback === "function")) {
    const frame = {
      exchange: "",
      routingKey: request.queueName,
      mandatory,
      immediate: false,
      deliveryMode: 2,
      priority: request.priority,
    };
    const written = sendMessage.call(channel, frame, frame, request.body);
    if (confirmed !== undefined) {
      pushConfirmCallback?.call(channel, confirmed);
    }
    return written;
  }

  const options = { persistent: true, mandatory, ...(request.priority === undefined ? {} : { priority: request.priority }) };
  if (confirmed === undefined) {
    return channel.publish("", request.queueName, request.body, options);
  }
  return (channel as ConfirmChannel).publish("", request.queueName, request.body, options, confirmed);
}
