/**
 * The consumer contract. A broker creates one consumer per queue a worker
 * reads. Deliveries are pushed to the worker's handler. The consumer never
 * has more than `prefetch` messages delivered and not yet acked, nacked or
 * requeued, which is how a worker bounds its memory.
 */

import type { MessageProxy } from "./worker/message-proxy.js";

/** Receives each decoded delivery. Called synchronously; must not throw. */
export type DeliveryHandler = (message: MessageProxy) => void;

export interface Consumer {
  /** The queue this consumer reads: `<q>` or `<q>.DQ`. */
  readonly queueName: string;

  /**
   * Starts delivering. Resolves once the consumer is registered with the
   * broker server; rejects with ConnectionFailedError when it cannot connect.
   * Bodies that cannot be decoded are dead-lettered by the consumer itself,
   * with an error log, and never reach the handler.
   */
  start(handler: DeliveryHandler): Promise<void>;

  /** Acknowledges a processed message: it leaves the queue. */
  ack(message: MessageProxy): Promise<void>;

  /** Rejects a failed message: it moves to the dead-letter queue. */
  nack(message: MessageProxy): Promise<void>;

  /** Returns delivered but unprocessed messages to their queue. */
  requeue(messages: readonly MessageProxy[]): Promise<void>;

  /** Stops new deliveries; acks and nacks of delivered messages still work. */
  cancel(): Promise<void>;

  /** Releases the consumer's resources. Unacked deliveries go back to the queue. */
  close(): Promise<void>;
}
