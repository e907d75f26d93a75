/**
 * The consumer of one StubBroker queue. It hands out bodies while fewer than
 * `prefetch` are unacked, like a RabbitMQ channel with basic.qos.
 */

import type { Consumer, DeliveryHandler } from "../../consumer.js";
import { DecodeError } from "../../errors.js";
import { getLogger } from "../../logger.js";
import { Message } from "../../message/message.js";
import { InFlightList, type InFlightEntry } from "../../worker/in-flight-list.js";
import { consumerState, MessageProxy } from "../../worker/message-proxy.js";
import type { StubBroker, StubQueue } from "./stub-broker.js";

/** The consumer's record of a delivery it handed to the worker, kept on the proxy under `consumerState`. */
class Outstanding {
  constructor(
    /** The body as delivered, which a requeue returns. */
    readonly body: Buffer,
    /** Its place among the outstanding deliveries, which settling removes. */
    readonly entry: InFlightEntry<MessageProxy>,
  ) {}
}

export class StubConsumer implements Consumer {
  private readonly logger = getLogger("melodramatiq.broker.StubConsumer");
  private readonly outstanding = new InFlightList<MessageProxy>();
  private handler: DeliveryHandler | undefined;
  private scheduled = false;
  private readonly queue: StubQueue;

  constructor(
    private readonly broker: StubBroker,
    readonly queueName: string,
    private readonly prefetch: number,
  ) {
    this.queue = broker.queue(queueName);
  }

  /** Messages delivered and not yet acked, nacked or requeued. */
  get outstandingCount(): number {
    return this.outstanding.size;
  }

  async start(handler: DeliveryHandler): Promise<void> {
    this.handler = handler;
    this.queue.consumers.add(this);
    this.wake();
  }

  /** Schedules delivery of waiting bodies; deliveries never run inside the publisher's call. */
  wake(): void {
    if (this.scheduled || this.handler === undefined) {
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    while (this.handler !== undefined && this.outstanding.size < this.prefetch) {
      const body = this.queue.bodies.shift();
      if (body === undefined) {
        return;
      }

      let message: Message;
      try {
        message = Message.decode(body);
      } catch (error) {
        const decodeError = error instanceof DecodeError ? error : new DecodeError(String(error), body);
        this.logger.error({ queueName: this.queueName, err: decodeError }, `Dead-lettering an undecodable message on '${this.queueName}'.`);
        this.broker.addDeadLetter(this.queueName, body, undefined, decodeError);
        continue;
      }

      const proxy = new MessageProxy(message, this.queueName);
      proxy[consumerState] = new Outstanding(body, this.outstanding.add(proxy));
      this.handler(proxy);
    }
  }

  async ack(message: MessageProxy): Promise<void> {
    if (this.take(message) !== undefined) {
      this.settled();
    }
  }

  async nack(message: MessageProxy): Promise<void> {
    const body = this.take(message);
    if (body !== undefined) {
      // The dead letter is the body as delivered, like on RabbitMQ and Redis,
      // not the message with the options the middleware changed since.
      this.broker.addDeadLetter(this.queueName, body, Message.decode(body), message.error);
      this.settled();
    }
  }

  async requeue(messages: readonly MessageProxy[]): Promise<void> {
    const bodies: Buffer[] = [];
    for (const message of messages) {
      const body = this.take(message);
      if (body !== undefined) {
        bodies.push(body);
      }
    }
    this.queue.bodies.unshift(...bodies);
    this.settled();
  }

  async cancel(): Promise<void> {
    this.handler = undefined;
    this.queue.consumers.delete(this);
  }

  /** Returns unacked bodies to the queue, as a closing AMQP channel does. */
  async close(): Promise<void> {
    await this.cancel();
    const bodies: Buffer[] = [];
    for (const message of this.outstanding.clear()) {
      message.abandoned = true;
      const record = message[consumerState];
      if (record instanceof Outstanding) {
        bodies.push(record.body);
      }
    }
    this.queue.bodies.unshift(...bodies);
    for (const consumer of this.queue.consumers) {
      consumer.wake();
    }
    this.broker.changed();
  }

  /** @internal Forgets every delivery in flight; used by flush so old work never counts again. */
  abandonAll(): void {
    for (const message of this.outstanding.clear()) {
      message.abandoned = true;
    }
    this.wake();
  }

  /** Removes a delivery of this consumer that is still outstanding and returns its body; undefined for any other message. */
  private take(message: MessageProxy): Buffer | undefined {
    const record = message[consumerState];
    if (record instanceof Outstanding && this.outstanding.remove(record.entry)) {
      return record.body;
    }
    return undefined;
  }

  private settled(): void {
    this.broker.changed();
    this.wake();
    // Other consumers of the same queue may have been waiting for bodies returned here.
    for (const consumer of this.queue.consumers) {
      consumer.wake();
    }
  }
}
