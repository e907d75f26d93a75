/**
 * The worker: consumes the broker's queues and runs up to `concurrency`
 * actor calls at once in this process.
 *
 * Life of a delivery: a message with a future `eta` is held in memory and,
 * when due, enqueued on its canonical queue and acked on the delay queue.
 * Any other message waits in a priority queue for a free task slot, runs
 * through the middleware hooks and its actor, and is then acked, or nacked
 * (dead-lettered) when it failed.
 *
 * Interrupting: a middleware can end an actor call early with
 * `message.task.interrupt(error)` (time limits, shutdown notifications). The
 * worker then handles `error` as if the actor had thrown it and frees the
 * task slot at once, even if the actor's promise never settles.
 *
 * Stopping: consumers stop delivering, messages not yet started are
 * requeued at once, running tasks get `shutdownTimeout` ms to finish, then
 * the consumers close, which returns anything still unacked to the broker.
 */

import type { Broker } from "../broker.js";
import type { Consumer } from "../consumer.js";
import { ActorNotFoundError, ConfigurationError, Retry, ShutdownError, SkipMessage, toError } from "../errors.js";
import { getLogger } from "../logger.js";
import { canonicalQueueName, delayQueueName, isDelayQueueName } from "../message/queue-names.js";
import { RateLimitExceededError } from "../rate-limits/errors.js";
import { taskStorage } from "./context.js";
import { DelayScheduler } from "./delay-scheduler.js";
import { Heap } from "./heap.js";
import { startLoopWatchdog, type LoopWatchdog } from "./loop-watchdog.js";
import type { MessageProxy } from "./message-proxy.js";
import { InFlightList } from "./in-flight-list.js";
import { RunningTask } from "./running-task.js";

/** Options of a Worker. */
export interface WorkerOptions {
  /** Canonical queues to consume (their delay queues included). @defaultValue every declared queue */
  queues?: readonly string[];
  /** Actor calls run at once in this process (Dramatiq's threads). @defaultValue 8 */
  concurrency?: number;
  /** Milliseconds running tasks get to finish when the worker stops. @defaultValue 600000 */
  shutdownTimeout?: number;
  /** Unacked messages per canonical queue. @defaultValue 2 × concurrency */
  queuePrefetch?: number;
  /** Unacked (held) messages per delay queue. @defaultValue 1000 × concurrency, at most 65535 */
  delayQueuePrefetch?: number;
  /**
   * Milliseconds the event loop may stay blocked (by a synchronous task, say)
   * before the watchdog logs a warning naming the actors and message ids in
   * progress, once per block. 0 turns the watchdog off.
   * @defaultValue 1000
   */
  eventLoopBlockThreshold?: number;
  /**
   * Watch the event loop from a worker thread, which warns while a block
   * lasts, even one that never ends. The default watchdog, a main-thread
   * timer, warns when the loop turns again and costs no memory to speak of.
   * The thread costs about 9 MiB of resident memory.
   * @defaultValue false
   */
  eventLoopWatchdogThread?: boolean;
}

interface WorkItem {
  readonly message: MessageProxy;
  readonly consumer: Consumer;
  readonly priority: number;
  readonly sequence: number;
}

interface HeldDelivery {
  readonly consumer: Consumer;
  /** Set once the copy is in the canonical queue, so that a retry only acks. */
  enqueued: boolean;
  /** Failed release attempts so far. */
  failures: number;
}

/** Milliseconds before the first retry of a failed release; doubles per failure. */
const RELEASE_RETRY_MIN = 1000;
const RELEASE_RETRY_MAX = 30_000;

const MAX_PREFETCH = 65535;

export class Worker {
  readonly broker: Broker;
  readonly concurrency: number;
  readonly shutdownTimeout: number;
  private readonly queues: readonly string[] | undefined;
  private readonly queuePrefetch: number;
  private readonly delayQueuePrefetch: number;
  private readonly logger = getLogger("melodramatiq.worker.Worker");
  private readonly consumers = new Map<string, Consumer>();
  private readonly pending = new Heap<WorkItem>((a, b) => a.priority < b.priority || (a.priority === b.priority && a.sequence < b.sequence));
  private readonly running = new InFlightList<Promise<void>>();
  private readonly heldBy = new WeakMap<MessageProxy, HeldDelivery>();
  private readonly delayed: DelayScheduler;
  private readonly eventLoopBlockThreshold: number;
  private readonly eventLoopWatchdogThread: boolean;
  private watchdog: LoopWatchdog | undefined;
  private sequence = 0;
  /** Actor calls in progress; `running` also holds short delay releases. */
  private activeCount = 0;
  private state: "idle" | "starting" | "running" | "stopping" | "stopped" = "idle";
  private idleWaiters: (() => void)[] = [];

  constructor(broker: Broker, options: WorkerOptions = {}) {
    this.broker = broker;
    this.concurrency = positiveInteger("concurrency", options.concurrency ?? 8);
    this.shutdownTimeout = nonNegative("shutdownTimeout", options.shutdownTimeout ?? 600_000);
    this.eventLoopBlockThreshold = nonNegative("eventLoopBlockThreshold", options.eventLoopBlockThreshold ?? 1000);
    this.eventLoopWatchdogThread = options.eventLoopWatchdogThread ?? false;
    if (typeof this.eventLoopWatchdogThread !== "boolean") {
      throw new ConfigurationError(`Invalid Worker option eventLoopWatchdogThread=${String(this.eventLoopWatchdogThread)}: it must be true or false.`);
    }
    this.queues = options.queues;
    this.queuePrefetch = positiveInteger("queuePrefetch", options.queuePrefetch ?? Math.min(2 * this.concurrency, MAX_PREFETCH));
    this.delayQueuePrefetch = positiveInteger(
      "delayQueuePrefetch",
      options.delayQueuePrefetch ?? Math.min(1000 * this.concurrency, MAX_PREFETCH),
    );
    this.delayed = new DelayScheduler((message) => {
      this.release(message);
    });
  }

  /** Number of actor calls running now. */
  get activeTasks(): number {
    return this.activeCount;
  }

  /**
   * Starts consuming. Rejects with ConnectionFailedError when the broker
   * cannot be reached, after closing whatever it had opened.
   */
  async start(): Promise<void> {
    if (this.state !== "idle") {
      throw new ConfigurationError("This worker was already started; create a new Worker to start again.");
    }

    this.state = "starting";
    await this.broker.emitBefore("beforeWorkerBoot", this);
    const queues = this.selectQueues();
    this.logger.debug({ queues }, `Starting worker on queues ${queues.join(", ")} with concurrency ${this.concurrency}.`);

    try {
      if (this.eventLoopBlockThreshold > 0) {
        this.watchdog = await startLoopWatchdog({ threshold: this.eventLoopBlockThreshold, slots: this.concurrency, thread: this.eventLoopWatchdogThread });
      }
      await this.broker.connect();
      for (const queueName of queues) {
        await this.startConsumer(queueName, this.queuePrefetch);
        await this.startConsumer(delayQueueName(queueName), this.delayQueuePrefetch);
      }
    } catch (error) {
      await this.closeConsumers();
      await this.watchdog?.stop();
      this.watchdog = undefined;
      this.state = "stopped";
      throw error;
    }

    this.state = "running";
    // Consumers may deliver while later ones are still starting; start that work now.
    this.pump();
    await this.broker.emitAfter("afterWorkerBoot", this);
    this.logger.info({ queues }, "Worker is ready for action.");
  }

  private selectQueues(): string[] {
    const declared = this.broker.getDeclaredQueues();
    if (this.queues === undefined) {
      return [...declared];
    }

    return this.queues.map((name) => {
      const queueName = canonicalQueueName(name);
      if (!declared.has(queueName)) {
        // Consuming a queue no local actor uses is allowed: its messages are
        // dead-lettered as unknown actors, which is what Python does too.
        this.logger.warn({ queueName }, `Queue '${queueName}' has no declared actor in this process.`);
        this.broker.declareQueue(queueName);
      }
      return queueName;
    });
  }

  private async startConsumer(queueName: string, prefetch: number): Promise<void> {
    const consumer = this.broker.consume(queueName, { prefetch });
    this.consumers.set(queueName, consumer);
    await consumer.start((message) => {
      this.onDelivery(consumer, message);
    });
  }

  private onDelivery(consumer: Consumer, message: MessageProxy): void {
    const eta = this.readEta(message);
    if (eta !== undefined && (eta > Date.now() || isDelayQueueName(consumer.queueName))) {
      this.heldBy.set(message, { consumer, enqueued: false, failures: 0 });
      void this.broker.emitAfter("beforeDelayMessage", message);
      this.delayed.hold(message, eta);
      return;
    }

    this.pending.push({
      message,
      consumer,
      priority: this.broker.actors.get(message.actorName)?.priority ?? 0,
      sequence: this.sequence++,
    });
    this.pump();
  }

  /**
   * Returns the message's eta in ms, or undefined when it has none. A null
   * eta counts as none; an eta that is not a number is logged and treated as
   * due now, as Python workers do.
   */
  private readEta(message: MessageProxy): number | undefined {
    const eta = message.options["eta"];
    if (eta === undefined || eta === null) {
      return undefined;
    }
    if (typeof eta === "number" && Number.isFinite(eta)) {
      return eta;
    }
    if (typeof eta === "bigint") {
      return Number(eta);
    }

    this.logger.warn(
      { messageId: message.messageId, actorName: message.actorName, eta },
      `Message '${message.messageId}' has an invalid eta ${JSON.stringify(eta)}; processing it now.`,
    );
    return Date.now();
  }

  /** Moves a due delayed message to its canonical queue, then acks the held delivery. */
  private release(message: MessageProxy): void {
    const held = this.heldBy.get(message);
    if (held === undefined || message.abandoned) {
      return;
    }

    const options = { ...message.options };
    delete options["eta"];
    const copy = message.message.copy({ queueName: canonicalQueueName(message.queueName), options });
    const task = (async (): Promise<void> => {
      try {
        if (!held.enqueued) {
          await this.broker.enqueue(copy);
          held.enqueued = true;
        }
        await held.consumer.ack(message);
      } catch (error) {
        this.retryRelease(message, held, error);
      }
    })();
    this.track(task);
  }

  /**
   * Holds a delayed message whose release failed (the broker unreachable)
   * for another attempt after a backoff. Its delivery stays unacked
   * meanwhile, and a worker that stops first returns it to its queue.
   */
  private retryRelease(message: MessageProxy, held: HeldDelivery, error: unknown): void {
    held.failures += 1;
    const retryIn = Math.min(RELEASE_RETRY_MIN * 2 ** (held.failures - 1), RELEASE_RETRY_MAX);
    const fields = { err: error, messageId: message.messageId, actorName: message.actorName, attempt: held.failures };
    if (this.state !== "running" || message.abandoned) {
      this.logger.error(fields, `Failed to release delayed message '${message.messageId}'; the broker will deliver it again.`);
      return;
    }

    this.logger.error(fields, `Failed to release delayed message '${message.messageId}' (attempt ${held.failures}); trying again in ${retryIn} ms.`);
    this.delayed.hold(message, Date.now() + retryIn);
  }

  private pump(): void {
    while (this.state === "running" && this.activeCount < this.concurrency && this.pending.size > 0) {
      const item = this.pending.pop();
      if (item === undefined || item.message.abandoned) {
        continue;
      }

      this.activeCount += 1;
      const task = this.process(item);
      const entry = this.running.add(task);
      // One reaction per task rather than two `finally` chains, because this
      // runs for every message; process() catches its own errors.
      const done = (): void => {
        this.activeCount -= 1;
        this.running.remove(entry);
        this.pump();
      };
      void task.then(done, done);
    }

    this.notifyIfIdle();
  }

  private track(task: Promise<void>): void {
    const entry = this.running.add(task);
    void task.finally(() => {
      this.running.remove(entry);
      this.pump();
    });
  }

  private async process(item: WorkItem): Promise<void> {
    const { message, consumer } = item;
    const actor = this.broker.actors.get(message.actorName);
    const watchdog = this.watchdog;
    const watched = watchdog?.enter(message);

    try {
      if (actor === undefined) {
        const error = new ActorNotFoundError(`Actor ${JSON.stringify(message.actorName)} is not declared in this worker process.`);
        this.logger.error(
          { messageId: message.messageId, actorName: message.actorName, queueName: message.queueName },
          `Failed to process message '${message.messageId}': actor '${message.actorName}' is not declared; moving it to the dead-letter queue.`,
        );
        message.fail(error);
        await this.broker.emitAfter("afterProcessMessage", message, { error });
      } else {
        await this.runActor(message);
      }
    } catch (error) {
      // Only a `before*` hook or this method's own bookkeeping gets here.
      this.logger.error({ err: error, messageId: message.messageId, actorName: message.actorName }, "Unexpected failure while processing a message.");
      message.fail(toError(error));
    }

    // Left before settling: a block while the broker client acks is not the actor's.
    watchdog?.leave(watched);
    await this.settle(consumer, message);
  }

  private async runActor(message: MessageProxy): Promise<void> {
    try {
      const before = this.broker.invokeBefore("beforeProcessMessage", [message]);
      if (before !== undefined) {
        await before;
      }
    } catch (error) {
      if (error instanceof SkipMessage) {
        await this.skip(message, error);
        return;
      }
      throw error;
    }

    const task = new RunningTask(message, this);
    message.task = task;
    try {
      const result = await this.callActor(task);
      message.result = result;
      const after = this.broker.invokeAfter("afterProcessMessage", [message, { result }]);
      if (after !== undefined) {
        await after;
      }
    } catch (thrown) {
      // An actor may skip its own message too, as in Python Dramatiq: it is
      // acked without the afterProcessMessage hooks, so Retries leaves it alone.
      if (thrown instanceof SkipMessage) {
        await this.skip(message, thrown);
        return;
      }

      const error = toError(thrown);
      message.error = error;
      this.logFailure(message, error);
      const after = this.broker.invokeAfter("afterProcessMessage", [message, { error }]);
      if (after !== undefined) {
        await after;
      }
      if (!message.retryScheduled && !message.requeueRequested) {
        message.fail(error);
      }
    }
  }

  /** Ends a message that a `beforeProcessMessage` hook or its actor skipped; it is acked unless a middleware failed it. */
  private async skip(message: MessageProxy, reason: SkipMessage): Promise<void> {
    this.logger.debug({ messageId: message.messageId, actorName: message.actorName }, `Skipped message '${message.messageId}'.`);
    // A middleware may fail a message while skipping it without saying
    // why, so the SkipMessage becomes the reason the Results middleware stores.
    if (message.failed && message.error === undefined) {
      message.error = reason;
    }
    await this.broker.emitAfter("afterSkipMessage", message);
  }

  /**
   * Calls the actor through the `aroundActor` hooks, with the task as its
   * `this` and as the AsyncLocalStorage context. Settles with the actor's
   * outcome, or as soon as a middleware interrupts the task; an outcome that
   * arrives after that is logged and dropped.
   */
  private callActor(task: RunningTask): Promise<unknown> {
    const { message } = task;
    const actor = this.broker.getActor(message.actorName);
    const call = async (): Promise<unknown> => {
      // A middleware may interrupt the task before the actor starts (a
      // worker stopping); the actor must not run then.
      if (task.interruption !== undefined) {
        throw task.interruption;
      }
      return actor.invoke(message.message.args, message.message.kwargs, task);
    };

    let work: Promise<unknown>;
    try {
      work = taskStorage.run(task, () => this.wrapActorCall(message, call));
    } catch (error) {
      // A synchronous `aroundActor` hook threw; the task still needs its outcome.
      work = Promise.reject(toError(error));
    }

    return task.outcome(work, (late) => {
      if (!late.fulfilled && late.error === task.interruption) {
        return;
      }

      const fields = { messageId: message.messageId, actorName: message.actorName, interruption: task.interruption?.name };
      if (late.fulfilled) {
        this.logger.debug(fields, `Actor '${message.actorName}' returned after message '${message.messageId}' was interrupted; ignoring its result.`);
      } else {
        this.logger.debug(
          { ...fields, err: late.error },
          `Actor '${message.actorName}' threw after message '${message.messageId}' was interrupted; ignoring the error.`,
        );
      }
    });
  }

  /**
   * Logs a failed actor call. Errors that steer the message rather than
   * report a bug (a retry request, a full rate limiter, a shutdown) are
   * logged below error level, as Python Dramatiq does for the first two.
   */
  private logFailure(message: MessageProxy, error: Error): void {
    const fields = { err: error, messageId: message.messageId, actorName: message.actorName };
    if (error instanceof Retry) {
      this.logger.debug(fields, `Actor requested a retry of message ${message.toString()}.`);
      return;
    }
    if (error instanceof RateLimitExceededError) {
      this.logger.debug(fields, `Rate limit exceeded in message ${message.toString()}: ${error.message}.`);
      return;
    }
    if (error instanceof ShutdownError) {
      // Retries decides whether the message runs again.
      this.logger.warn(fields, `Message ${message.toString()} was interrupted because the worker is stopping.`);
      return;
    }

    this.logger.error(fields, `Failed to process message ${message.toString()} with unhandled exception.`);
  }

  /** Runs the actor call inside every middleware's `aroundActor`, the first middleware outermost. */
  private wrapActorCall(message: MessageProxy, call: () => Promise<unknown>): Promise<unknown> {
    const stack = this.broker.middleware;
    let next = call;
    for (let index = stack.length - 1; index >= 0; index -= 1) {
      const middleware = stack[index];
      if (middleware?.aroundActor !== undefined) {
        const inner = next;
        next = () => middleware.aroundActor?.(this.broker, message, inner) ?? inner();
      }
    }
    return next();
  }

  /** Acks or nacks a processed message with the ack/nack hooks; failures are logged. */
  private async settle(consumer: Consumer, message: MessageProxy): Promise<void> {
    if (message.abandoned) {
      return;
    }
    if (message.requeueRequested && !message.failed) {
      await this.requeue(consumer, message);
      return;
    }

    const failed = message.failed;
    const before = failed ? "beforeNack" : "beforeAck";
    const after = failed ? "afterNack" : "afterAck";
    try {
      // The default stack implements no ack or nack hook, so both calls usually return undefined without a promise.
      const beforeHooks = this.broker.invokeBefore(before, [message]);
      if (beforeHooks !== undefined) {
        await beforeHooks;
      }
      if (failed) {
        await consumer.nack(message);
      } else {
        await consumer.ack(message);
      }
      const afterHooks = this.broker.invokeAfter(after, [message]);
      if (afterHooks !== undefined) {
        await afterHooks;
      }
    } catch (error) {
      this.logger.error(
        { err: error, messageId: message.messageId, actorName: message.actorName },
        `Failed to ${failed ? "nack" : "ack"} message '${message.messageId}'; the broker will deliver it again.`,
      );
    }
  }

  /** Returns a message whose next attempt a middleware could not schedule to its queue, neither acked nor dead-lettered. */
  private async requeue(consumer: Consumer, message: MessageProxy): Promise<void> {
    try {
      await consumer.requeue([message]);
      this.logger.warn({ messageId: message.messageId, actorName: message.actorName }, `Returned message '${message.messageId}' to its queue to run again.`);
    } catch (error) {
      this.logger.error(
        { err: error, messageId: message.messageId, actorName: message.actorName },
        `Failed to return message '${message.messageId}' to its queue; its consumer returns it once the broker is reachable again.`,
      );
    }
  }

  /** Resolves when no message is waiting for a slot and no task is running. */
  async join(): Promise<void> {
    if (this.isIdle()) {
      return;
    }
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.pending.size === 0 && this.running.size === 0;
  }

  private notifyIfIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) {
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }

  /**
   * Stops gracefully: no new deliveries, unstarted and held messages go
   * back to their queues at once, running tasks get `timeout` ms (default
   * `shutdownTimeout`) to finish, then the consumers close. Safe to call twice.
   */
  async stop(options: { timeout?: number } = {}): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped" || this.state === "idle") {
      this.state = "stopped";
      return;
    }

    this.state = "stopping";
    this.logger.info({}, "Stopping worker...");
    await this.broker.emitBefore("beforeWorkerShutdown", this);

    await Promise.all([...this.consumers.values()].map((consumer) => consumer.cancel().catch((error: unknown) => {
      this.logger.warn({ err: error, queueName: consumer.queueName }, `Failed to cancel the consumer of '${consumer.queueName}'.`);
    })));
    await this.requeueWaiting();

    const finished = await this.waitForRunning(options.timeout ?? this.shutdownTimeout);
    if (!finished) {
      this.logger.warn(
        { running: this.running.size },
        `${this.running.size} task(s) did not finish within the shutdown timeout; their messages stay unacked and will be delivered again.`,
      );
    }

    await this.closeConsumers();
    await this.watchdog?.stop();
    this.watchdog = undefined;
    this.state = "stopped";
    this.notifyIfIdle();
    await this.broker.emitAfter("afterWorkerShutdown", this);
    this.logger.info({}, "Worker has been shut down.");
  }

  private async requeueWaiting(): Promise<void> {
    const byConsumer = new Map<Consumer, MessageProxy[]>();
    const add = (consumer: Consumer, message: MessageProxy): void => {
      const list = byConsumer.get(consumer) ?? [];
      list.push(message);
      byConsumer.set(consumer, list);
    };

    for (const item of this.pending.drain()) {
      add(item.consumer, item.message);
    }
    const released: { consumer: Consumer; message: MessageProxy }[] = [];
    for (const message of this.delayed.drain()) {
      const held = this.heldBy.get(message);
      if (held?.enqueued === true) {
        // Its copy is in the canonical queue already: requeueing would run it twice.
        released.push({ consumer: held.consumer, message });
      } else if (held !== undefined) {
        add(held.consumer, message);
      }
    }
    for (const { consumer, message } of released) {
      try {
        await consumer.ack(message);
      } catch (error) {
        this.logger.error(
          { err: error, messageId: message.messageId, actorName: message.actorName },
          `Failed to ack released delayed message '${message.messageId}'; the broker will deliver it again.`,
        );
      }
    }

    for (const [consumer, messages] of byConsumer) {
      const live = messages.filter((message) => !message.abandoned);
      this.logger.debug({ queueName: consumer.queueName, count: live.length }, `Requeueing ${live.length} message(s) on '${consumer.queueName}'.`);
      try {
        await consumer.requeue(live);
      } catch (error) {
        this.logger.error({ err: error, queueName: consumer.queueName }, `Failed to requeue messages on '${consumer.queueName}'; the broker will deliver them again.`);
      }
    }
  }

  private async waitForRunning(timeout: number): Promise<boolean> {
    if (this.running.size === 0) {
      return true;
    }

    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, timeout);
    });
    const drained = (async (): Promise<true> => {
      while (this.running.size > 0) {
        await Promise.allSettled(this.running.values());
      }
      return true;
    })();

    const finished = await Promise.race([drained, expired]);
    clearTimeout(timer);
    return finished;
  }

  private async closeConsumers(): Promise<void> {
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((consumer) => consumer.close().catch((error: unknown) => {
      this.logger.warn({ err: error, queueName: consumer.queueName }, `Failed to close the consumer of '${consumer.queueName}'.`);
    })));
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`Invalid worker option ${name}=${String(value)}: it must be a whole number of at least 1.`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new ConfigurationError(`Invalid worker option ${name}=${String(value)}: it must be a number of milliseconds, 0 or more.`);
  }
  return value;
}
