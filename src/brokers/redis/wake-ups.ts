/**
 * Wake-up notifications between processes that share a Redis broker's
 * queues. Redis cannot push a list entry to a consumer, so an idle
 * consumer polls, backing off to RedisConsumer's idle-poll maximum. To
 * cut that wait, a producer PUBLISHes its broker id on the queue's wake-up
 * channel after each enqueue. Every worker process SUBSCRIBEs to the
 * channels of the queues it consumes, and wakes those consumers when a
 * notification from another broker arrives.
 *
 * The notification is only a hint, outside the dispatch script and the key
 * layout, so processes that do not take part still interoperate: a Python
 * Dramatiq producer does not publish, so a Node worker finds its messages
 * at its next poll, and a Python worker ignores the channel. Pub/sub
 * channels are not keys, so no key of the Python layout is added. A lost
 * notification (a reconnect, a server that refuses PUBLISH or SUBSCRIBE by
 * ACL) costs latency, never a message.
 */

import type { BrokerRedisClient } from "./client.js";

import type { Logger } from "../../logger.js";

/** Options of a WakeUpChannel. */
export interface WakeUpChannelOptions {
  /** The broker's key namespace, which scopes the channel names. */
  readonly namespace: string;
  /** This broker's id: sent with each notification, and notifications carrying it are ignored, because local consumers are woken directly. */
  readonly senderId: string;
  readonly logger: Logger;
  /** Opens the dedicated connection that subscribing needs (a Redis connection in subscribe mode runs no other command). */
  readonly createSubscriber: () => BrokerRedisClient;
  /** Called with the queue name (`<q>` or `<q>.DQ`) of each notification. */
  readonly onWakeUp: (queueName: string) => void;
}

export class WakeUpChannel {
  private subscriber: BrokerRedisClient | undefined;
  /** Consumers per subscribed queue; the channel is unsubscribed when the count drops to 0. */
  private readonly subscriptions = new Map<string, number>();
  /** Queues with a PUBLISH in flight, and whether another enqueue finished meanwhile and needs one more. */
  private readonly publishing = new Map<string, boolean>();
  private publishDisabled = false;
  private subscribeFailed = false;

  constructor(private readonly options: WakeUpChannelOptions) {}

  /** Name of the channel of `queueName`, e.g. `dramatiq:default.wakeup`. */
  channelName(queueName: string): string {
    return `${this.options.namespace}:${queueName}.wakeup`;
  }

  /**
   * Tells the consumers of `queueName` in other processes that a message
   * is waiting. Calls are coalesced: at most one PUBLISH per queue is in
   * flight, followed by one more when further enqueues finished meanwhile,
   * so a burst of enqueues costs about one PUBLISH per round trip.
   */
  notify(client: BrokerRedisClient, queueName: string): void {
    if (this.publishDisabled) {
      return;
    }
    if (this.publishing.has(queueName)) {
      this.publishing.set(queueName, true);
      return;
    }

    this.publishing.set(queueName, false);
    this.publish(client, queueName);
  }

  private publish(client: BrokerRedisClient, queueName: string): void {
    client.publish(this.channelName(queueName), this.options.senderId).then(
      () => {
        this.afterPublish(client, queueName);
      },
      (error: unknown) => {
        this.onPublishFailed(error, queueName);
        this.afterPublish(client, queueName);
      },
    );
  }

  private afterPublish(client: BrokerRedisClient, queueName: string): void {
    if (this.publishing.get(queueName) === true && !this.publishDisabled) {
      this.publishing.set(queueName, false);
      this.publish(client, queueName);
      return;
    }
    this.publishing.delete(queueName);
  }

  private onPublishFailed(error: unknown, queueName: string): void {
    if (isPermissionError(error)) {
      // Retrying would fail the same way on every enqueue.
      this.publishDisabled = true;
      this.options.logger.warn(
        { err: error, queueName },
        `Redis refused PUBLISH on ${this.channelName(queueName)} (${describe(error)}); ` +
          "workers in other processes will find new messages at their next poll instead of at once. Allow PUBLISH for this user to restore wake-ups.",
      );
      return;
    }
    // The enqueue itself succeeded, and a connection problem shows in the next command's error.
    this.options.logger.debug({ err: error, queueName }, `Failed to publish a wake-up for '${queueName}': ${describe(error)}.`);
  }

  /** Subscribes to the wake-ups of `queueName`, opening the subscriber connection on first use. */
  subscribe(queueName: string): void {
    const count = this.subscriptions.get(queueName) ?? 0;
    this.subscriptions.set(queueName, count + 1);
    if (count > 0) {
      return;
    }

    const subscriber = this.getSubscriber();
    subscriber.subscribe(this.channelName(queueName)).catch((error: unknown) => {
      this.onSubscribeFailed(error, queueName);
    });
  }

  /** Drops one consumer's interest in `queueName`; the last one unsubscribes. */
  unsubscribe(queueName: string): void {
    const count = this.subscriptions.get(queueName) ?? 0;
    if (count > 1) {
      this.subscriptions.set(queueName, count - 1);
      return;
    }

    this.subscriptions.delete(queueName);
    this.subscriber?.unsubscribe(this.channelName(queueName)).catch((error: unknown) => {
      this.options.logger.debug({ err: error, queueName }, `Failed to unsubscribe from the wake-ups of '${queueName}': ${describe(error)}.`);
    });
  }

  /** Closes the subscriber connection. Publishing keeps working, on the broker's own client. */
  close(): void {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscriptions.clear();
    // A subscriber has nothing to flush, so it is dropped without QUIT.
    subscriber?.disconnect();
  }

  private getSubscriber(): BrokerRedisClient {
    if (this.subscriber !== undefined) {
      return this.subscriber;
    }

    const subscriber = this.options.createSubscriber();
    const prefix = `${this.options.namespace}:`;
    subscriber.on("message", (channel: string, sender: string) => {
      if (sender !== this.options.senderId && channel.startsWith(prefix) && channel.endsWith(".wakeup")) {
        this.options.onWakeUp(channel.slice(prefix.length, -".wakeup".length));
      }
    });
    // The client reconnects and subscribes again by itself, and the broker's
    // own client reports the outage, so this connection only logs at debug.
    subscriber.on("error", (error: Error) => {
      this.options.logger.debug({ err: error }, `The wake-up subscriber connection failed: ${error.message}.`);
    });

    this.subscriber = subscriber;
    return subscriber;
  }

  private onSubscribeFailed(error: unknown, queueName: string): void {
    if (this.subscribeFailed) {
      return;
    }
    this.subscribeFailed = true;
    this.options.logger.warn(
      { err: error, queueName },
      `Failed to subscribe to ${this.channelName(queueName)} (${describe(error)}); ` +
        "the worker finds new messages of other processes at its next poll instead of at once.",
    );
  }
}

function isPermissionError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOPERM");
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, "");
}
