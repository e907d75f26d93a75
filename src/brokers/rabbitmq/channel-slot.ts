/**
 * A channel opened on first use and opened again after it closes, on the
 * connection of a ConnectionManager. The broker keeps two: one to publish on
 * and one for declarations, purges and queue counts. RabbitMQ closes the
 * channel of a refused declaration (406), and this way that close does not
 * fail publishes whose confirms are still pending.
 */

import type { Channel, ChannelModel } from "amqplib";

import type { Logger } from "../../logger.js";
import { CLOSE_TIMEOUT, settlesWithin, type ConnectionManager } from "./connection.js";

/** An open channel and the connection it belongs to. */
export interface OpenChannel<C extends Channel> {
  readonly model: ChannelModel;
  readonly channel: C;
}

export class ChannelSlot<C extends Channel> {
  private current: OpenChannel<C> | undefined;
  private opening: Promise<OpenChannel<C>> | undefined;

  constructor(
    private readonly connections: ConnectionManager,
    /** Opens the channel and prepares it (e.g. puts it in confirm mode). */
    private readonly create: (model: ChannelModel) => Promise<C>,
    /** Purpose shown in logs, e.g. "publish". */
    private readonly purpose: string,
    private readonly logger: Logger,
    /** Called once for every channel this slot opens, before it is used. */
    private readonly onOpen: (open: OpenChannel<C>) => void = () => {},
  ) {}

  /**
   * Returns the open channel, opening the connection and the channel when
   * needed. Rejects with ConnectionFailedError when no connection can be made.
   */
  async get(): Promise<OpenChannel<C>> {
    if (this.current !== undefined) {
      return this.current;
    }

    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** Closes the channel, if open. The next `get()` opens a new one. */
  async close(): Promise<void> {
    const open = this.current;
    this.current = undefined;
    if (open !== undefined) {
      await closeChannel(open.channel);
    }
  }

  private async open(): Promise<OpenChannel<C>> {
    const model = await this.connections.connection();
    const channel = await this.create(model);
    const open: OpenChannel<C> = { model, channel };

    // A channel-level error (e.g. a refused declaration) is followed by
    // 'close'; without an 'error' listener amqplib would crash the process.
    // Refused declarations on the admin channel are reported by their caller.
    // A closed publish channel can lose messages sent without confirms, so it
    // is logged at warning level.
    channel.on("error", (error: Error) => {
      const level = this.purpose === "publish" ? "warn" : "debug";
      this.logger[level]({ err: error, channel: this.purpose }, `RabbitMQ closed the ${this.purpose} channel: ${error.message}`);
    });
    channel.on("close", () => {
      if (this.current === open) {
        this.current = undefined;
      }
    });

    this.current = open;
    this.onOpen(open);
    return open;
  }
}

/**
 * Closes a channel, resolving once it is closed, also when its connection
 * dies first (amqplib's close() then never settles, but 'close' is
 * emitted), and at the latest after CLOSE_TIMEOUT ms.
 */
export async function closeChannel(channel: Channel): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    channel.once("close", () => {
      resolve();
    });
    channel.close().then(resolve, () => {
      // Already closed or closing.
      resolve();
    });
  });
  await settlesWithin(closed, CLOSE_TIMEOUT);
}
