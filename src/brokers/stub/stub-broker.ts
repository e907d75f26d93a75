/**
 * An in-memory broker for tests and for running an app without servers.
 * It keeps encoded bodies, so what works here also encodes on a real
 * broker, and it has the same queue, delay-queue and dead-letter layout.
 */

import { Broker, type BrokerOptions, type ConsumeOptions, type JoinOptions } from "../../broker.js";
import type { Consumer } from "../../consumer.js";
import { DecodeError, QueueJoinTimeoutError } from "../../errors.js";
import type { Message } from "../../message/message.js";
import { canonicalQueueName, deadLetterQueueName, delayQueueName } from "../../message/queue-names.js";
import { StubConsumer } from "./stub-consumer.js";

/** Milliseconds between the no-op ticks of a join's keep-alive timer; the largest delay Node's timers accept. */
const KEEP_ALIVE_INTERVAL = 2_147_483_647;

/** A dead-lettered message and the error that failed it. */
export interface DeadLetter {
  readonly queueName: string;
  /** The decoded message, or undefined when its body could not be decoded. */
  readonly message: Message | undefined;
  readonly body: Buffer;
  readonly error: Error | undefined;
}

/** Options of StubBroker. */
export type StubBrokerOptions = BrokerOptions;

/** @internal One in-memory queue and the consumers reading it. */
export interface StubQueue {
  readonly bodies: Buffer[];
  readonly consumers: Set<StubConsumer>;
}

export class StubBroker extends Broker {
  /** Every dead-lettered message, oldest first, until `flushAll()`. */
  readonly deadLetters: DeadLetter[] = [];
  private readonly stubQueues = new Map<string, StubQueue>();
  private readonly watchers = new Set<() => void>();

  constructor(options: StubBrokerOptions = {}) {
    super(options);
  }

  /** Nothing to connect to. */
  override async connect(): Promise<void> {}

  /** Nothing to close. */
  override async close(): Promise<void> {}

  protected override async publish(message: Message): Promise<void> {
    this.publishBody(message.queueName, message.encode());
  }

  /** Puts raw bytes on a queue, as another producer might; meant for tests of bad input. */
  publishBody(queueName: string, body: Buffer): void {
    this.declareQueue(canonicalQueueName(queueName));
    const queue = this.queue(queueName);
    queue.bodies.push(body);
    for (const consumer of queue.consumers) {
      consumer.wake();
    }
    this.changed();
  }

  override consume(queueName: string, options: ConsumeOptions): Consumer {
    return new StubConsumer(this, queueName, options.prefetch);
  }

  /** @internal Returns the in-memory queue called `queueName`, creating it. */
  queue(queueName: string): StubQueue {
    let queue = this.stubQueues.get(queueName);
    if (queue === undefined) {
      queue = { bodies: [], consumers: new Set() };
      this.stubQueues.set(queueName, queue);
    }
    return queue;
  }

  /** @internal Records a dead letter; called by consumers. */
  addDeadLetter(queueName: string, body: Buffer, message: Message | undefined, error: Error | undefined): void {
    this.deadLetters.push({ queueName: deadLetterQueueName(queueName), message, body, error });
    this.changed();
  }

  /** Dead letters of one queue (its delay queue's included). */
  deadLettersOf(queueName: string): DeadLetter[] {
    const name = deadLetterQueueName(queueName);
    return this.deadLetters.filter((letter) => letter.queueName === name);
  }

  /** @internal Wakes `join()` calls to re-check their queues. */
  changed(): void {
    for (const watcher of [...this.watchers]) {
      watcher();
    }
  }

  override async queueDepth(queueName: string): Promise<number> {
    if (queueName.endsWith(".XQ")) {
      return this.deadLettersOf(queueName).length;
    }

    const queue = this.queue(queueName);
    const inFlight = [...queue.consumers].reduce((sum, consumer) => sum + consumer.outstandingCount, 0);
    return queue.bodies.length + inFlight;
  }

  override async flush(queueName: string): Promise<void> {
    const deadName = deadLetterQueueName(queueName);
    const kept = this.deadLetters.filter((letter) => letter.queueName !== deadName);
    this.deadLetters.splice(0, this.deadLetters.length, ...kept);

    for (const name of [canonicalQueueName(queueName), delayQueueName(queueName)]) {
      const queue = this.queue(name);
      queue.bodies.length = 0;
      for (const consumer of queue.consumers) {
        consumer.abandonAll();
      }
    }
    this.changed();
  }

  /**
   * Empties every queue and the dead letters, and abandons deliveries in
   * flight, so one test's leftovers never reach the next. Running workers
   * keep consuming.
   */
  override async flushAll(): Promise<void> {
    for (const queueName of this.stubQueues.keys()) {
      await this.flush(queueName);
    }
    this.deadLetters.length = 0;
    this.changed();
  }

  /**
   * Waits until `queueName` and its delay queue hold no message and have
   * nothing in flight. Rejects with the actor's error as soon as a message
   * of the queue is dead-lettered (unless `failFast` is false), and with
   * QueueJoinTimeoutError after `timeout` ms.
   */
  override async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const { timeout, failFast = true } = options;
    const canonical = canonicalQueueName(queueName);

    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      // The worker's delay timers do not keep a process alive, and the stub
      // has no socket that would, so a script awaiting a join whose queue
      // waits for a retry's backoff would exit early. The join keeps it alive.
      const keepAlive = timeout === undefined ? setInterval(() => {}, KEEP_ALIVE_INTERVAL) : undefined;
      const finish = (error?: Error): void => {
        this.watchers.delete(check);
        clearTimeout(timer);
        clearInterval(keepAlive);
        if (error === undefined) {
          resolve();
        } else {
          reject(error);
        }
      };

      const check = (): void => {
        const failure = failFast ? this.deadLettersOf(canonical)[0] : undefined;
        if (failure !== undefined) {
          finish(failure.error ?? new DecodeError("A message was dead-lettered without an error.", failure.body));
        } else if (this.pendingCount(canonical).total === 0) {
          finish();
        }
      };

      if (timeout !== undefined) {
        timer = setTimeout(() => {
          const counts = this.pendingCount(canonical);
          finish(
            new QueueJoinTimeoutError(
              `Timed out after ${timeout} ms waiting for queue '${canonical}': ${counts.waiting} message(s) waiting, ` +
                `${counts.delayed} delayed (delayed sends or retries with backoff), ${counts.inFlight} in flight.`,
            ),
          );
        }, timeout);
      }

      this.watchers.add(check);
      check();
    });
  }

  private pendingCount(canonical: string): { waiting: number; delayed: number; inFlight: number; total: number } {
    const main = this.queue(canonical);
    const delayed = this.queue(delayQueueName(canonical));
    const inFlight = (queue: StubQueue): number => [...queue.consumers].reduce((sum, consumer) => sum + consumer.outstandingCount, 0);
    const waiting = main.bodies.length;
    const delayedCount = delayed.bodies.length + inFlight(delayed);
    const running = inFlight(main);
    return { waiting, delayed: delayedCount, inFlight: running, total: waiting + delayedCount + running };
  }
}
