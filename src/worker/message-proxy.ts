/**
 * The worker's view of a delivered message: the message itself plus what
 * happens to it while it is processed (failed or not, the error, the result)
 * and the broker-specific delivery data its consumer needs to ack it.
 */

import type { Message, MessageOptions } from "../message/message.js";
import type { RunningTask } from "./running-task.js";

/**
 * @internal Key of the delivering consumer's bookkeeping on a MessageProxy,
 * such as its place among the consumer's outstanding deliveries. That
 * bookkeeping points back to the proxy, so it sits under a symbol, which
 * JSON.stringify and Object.keys skip.
 */
export const consumerState = Symbol("melodramatiq.consumerState");

export class MessageProxy {
  /** Set by `fail()`: the message will be nacked (dead-lettered) instead of acked. */
  failed = false;
  /** The error the actor or a middleware threw, if any. */
  error: Error | undefined = undefined;
  /** The actor's return value, once it has succeeded. */
  result: unknown = undefined;
  /** Set by the Retries middleware when it has re-enqueued the message, so the worker acks it. */
  retryScheduled = false;
  /**
   * Set by a middleware that could not schedule the next attempt, such as
   * Retries when enqueueing the retry failed: the worker returns the message
   * to its queue instead of acking or dead-lettering it, so it runs again.
   */
  requeueRequested = false;
  /**
   * Set by the consumer when the broker has dropped this delivery (a flush,
   * a lost connection): the worker then neither starts, releases nor acks
   * it, because the broker will deliver it again or has discarded it.
   */
  abandoned = false;
  /**
   * The actor call in progress for this message, set by the worker once the
   * `beforeProcessMessage` hooks have passed. Middleware calls
   * `task.interrupt(error)` on it to end the call early.
   */
  task: RunningTask | undefined = undefined;
  /** @internal The delivering consumer's bookkeeping; only that consumer reads it. */
  [consumerState]: unknown = undefined;

  constructor(
    readonly message: Message,
    /** The queue the consumer read it from; `<q>.DQ` for delayed messages. */
    readonly consumerQueue: string,
    /** Broker-specific delivery data (an AMQP delivery, a Redis message id…). */
    readonly delivery?: unknown,
  ) {}

  get queueName(): string {
    return this.message.queueName;
  }

  get actorName(): string {
    return this.message.actorName;
  }

  get messageId(): string {
    return this.message.messageId;
  }

  get options(): MessageOptions {
    return this.message.options;
  }

  /** Marks the message as failed, so it is dead-lettered once processing ends. */
  fail(error?: Error): void {
    this.failed = true;
    if (error !== undefined) {
      this.error = error;
    }
  }

  toString(): string {
    return this.message.toString();
  }
}
