/**
 * The broker base class: the registry of actors, queues and middleware that
 * every broker shares, and the contract each concrete broker (stub,
 * RabbitMQ, Redis) implements for publishing and consuming.
 */

import type { Actor } from "./actor.js";
import { ActorNotFoundError, ConfigurationError, toError } from "./errors.js";
import { getLogger, type Logger } from "./logger.js";
import type { Message } from "./message/message.js";
import { canonicalQueueName, delayQueueName, validateQueueName } from "./message/queue-names.js";
import { toApiName } from "./message/option-names.js";
import { defaultMiddleware } from "./middleware/defaults.js";
import type { AsyncHookName, HookArgs, Middleware, MiddlewareClass, SyncHookName } from "./middleware/middleware.js";
import type { Consumer } from "./consumer.js";

/** Options shared by every broker. */
export interface BrokerOptions {
  /** The middleware stack. @defaultValue `defaultMiddleware()` */
  middleware?: Middleware[];
}

/** Options of `Broker.enqueue()`. */
export interface EnqueueOptions {
  /** Milliseconds to wait before the message becomes available; any value, 0 included, routes it through the delay queue. */
  delay?: number;
  /** Clock reading (UNIX ms) the eta is computed from, so a caller can stamp other options with the same instant. @defaultValue `Date.now()` */
  now?: number;
}

/** Options of `Broker.consume()`. */
export interface ConsumeOptions {
  /** Maximum number of delivered and not yet acked messages. */
  prefetch: number;
}

/** Options of `Broker.join()`. */
export interface JoinOptions {
  /** Milliseconds to wait before rejecting with QueueJoinTimeoutError. @defaultValue no limit */
  timeout?: number;
  /** Reject as soon as a message of the queue is dead-lettered, with its error. @defaultValue `true` */
  failFast?: boolean;
}

/** Options of `Broker.addMiddleware()`: at most one of them. */
export interface AddMiddlewareOptions {
  /** Insert before the first middleware of this class. */
  before?: MiddlewareClass;
  /** Insert after the last middleware of this class. */
  after?: MiddlewareClass;
}

/** The broker that enqueued each message returned by `Broker.enqueue()`, so `Message.getResult()` finds its result backend. */
const enqueuingBrokers = new WeakMap<Message<readonly unknown[]>, Broker>();

/** Returns the broker whose `enqueue()` returned `message`, or undefined for any other message. */
export function getEnqueuingBroker(message: Message<readonly unknown[]>): Broker | undefined {
  return enqueuingBrokers.get(message);
}

type HookMethod = (this: Middleware, broker: Broker, ...args: unknown[]) => unknown;

/** One middleware's implementation of a hook. */
interface HookCall {
  readonly middleware: Middleware;
  readonly method: HookMethod;
}

/** The implementations of one hook, and the middleware list they were read from. */
interface HookPlan {
  readonly source: readonly Middleware[];
  readonly calls: readonly HookCall[];
}

const RESOLVED: Promise<void> = Promise.resolve();

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function sameEntries(a: readonly Middleware[], b: readonly Middleware[]): boolean {
  if (a.length !== b.length) {
    return false;
  }
  for (let index = 0; index < a.length; index += 1) {
    if (a[index] !== b[index]) {
      return false;
    }
  }
  return true;
}

/** Actor options that the broker itself handles; the rest must belong to a middleware. */
const coreActorOptions = new Set(["actorName", "queueName", "priority", "broker"]);

export abstract class Broker {
  /** Declared actors by name. */
  readonly actors = new Map<string, Actor>();
  readonly middleware: Middleware[];
  protected readonly logger: Logger;
  private readonly queues = new Set<string>();
  private readonly delayQueues = new Set<string>();
  private readonly hookPlans = new Map<AsyncHookName, HookPlan>();

  constructor(options: BrokerOptions = {}) {
    this.middleware = [...(options.middleware ?? defaultMiddleware())];
    this.logger = getLogger(`melodramatiq.broker.${new.target.name}`);
  }

  /** Actor options accepted on this broker: the core ones plus those of every middleware, in camelCase. */
  get actorOptions(): Set<string> {
    const names = new Set(coreActorOptions);
    for (const middleware of this.middleware) {
      for (const name of middleware.actorOptions) {
        names.add(name);
      }
    }
    return names;
  }

  /**
   * Adds a middleware, at the end or relative to a middleware class. Actors
   * declared before the call keep working; their options are checked again.
   */
  addMiddleware(middleware: Middleware, options: AddMiddlewareOptions = {}): void {
    if (options.before !== undefined && options.after !== undefined) {
      throw new ConfigurationError("addMiddleware() takes either `before` or `after`, not both.");
    }

    const index = this.insertionIndex(options);
    this.middleware.splice(index, 0, middleware);
    for (const queueName of this.queues) {
      middleware.afterDeclareQueue?.(this, queueName);
      middleware.afterDeclareDelayQueue?.(this, delayQueueName(queueName));
    }
    for (const actor of this.actors.values()) {
      middleware.afterDeclareActor?.(this, actor);
    }
  }

  private insertionIndex(options: AddMiddlewareOptions): number {
    const anchor = options.before ?? options.after;
    if (anchor === undefined) {
      return this.middleware.length;
    }

    const positions = this.middleware.flatMap((m, index) => (m instanceof anchor ? [index] : []));
    if (positions.length === 0) {
      throw new ConfigurationError(`addMiddleware(): no middleware of class ${anchor.name} is installed to position against.`);
    }

    return options.before !== undefined ? (positions[0] ?? 0) : (positions.at(-1) ?? 0) + 1;
  }

  /** Calls a synchronous declaration hook on every middleware. */
  emitSync<Name extends SyncHookName>(hook: Name, ...args: HookArgs<Name>): void {
    for (const middleware of this.middleware) {
      const method = middleware[hook] as ((broker: Broker, ...rest: HookArgs<Name>) => void) | undefined;
      method?.call(middleware, this, ...args);
    }
  }

  /** Calls a `before*` hook on every middleware in order; the first error propagates. */
  emitBefore<Name extends AsyncHookName>(hook: Name, ...args: HookArgs<Name>): Promise<void> {
    try {
      return this.invokeBefore(hook, args) ?? RESOLVED;
    } catch (error) {
      return Promise.reject(toError(error));
    }
  }

  /**
   * Calls an `after*` hook on every middleware (in reverse for the process
   * and skip hooks). An error is logged and the remaining middleware still run.
   */
  emitAfter<Name extends AsyncHookName>(hook: Name, ...args: HookArgs<Name>): Promise<void> {
    return this.invokeAfter(hook, args) ?? RESOLVED;
  }

  /**
   * @internal `emitBefore` for the worker's hot path: returns undefined,
   * rather than a promise, when every hook returned synchronously, and
   * throws a synchronous hook's error. Most hooks of the default stack
   * return at once for most messages, and a promise per hook per message
   * is a measurable share of a worker's allocations.
   */
  invokeBefore<Name extends AsyncHookName>(hook: Name, args: HookArgs<Name>, from = 0): Promise<void> | undefined {
    const calls = this.hookCalls(hook);
    for (let index = from; index < calls.length; index += 1) {
      const call = calls[index];
      if (call === undefined) {
        break;
      }
      const { middleware, method } = call;
      const result = method.call(middleware, this, ...(args as unknown[]));
      if (isPromiseLike(result)) {
        return this.finishBefore(result, hook, args, index + 1);
      }
    }
    return undefined;
  }

  /** @internal `emitAfter` for the worker's hot path: returns undefined when every hook returned synchronously. */
  invokeAfter<Name extends AsyncHookName>(hook: Name, args: HookArgs<Name>, from = 0): Promise<void> | undefined {
    const calls = this.hookCalls(hook);
    for (let index = from; index < calls.length; index += 1) {
      const call = calls[index];
      if (call === undefined) {
        break;
      }
      const { middleware, method } = call;
      let result: unknown;
      try {
        result = method.call(middleware, this, ...(args as unknown[]));
      } catch (error) {
        this.logHookFailure(middleware, hook, error);
        continue;
      }
      if (isPromiseLike(result)) {
        return this.finishAfter(result, middleware, hook, args, index + 1);
      }
    }
    return undefined;
  }

  private async finishBefore<Name extends AsyncHookName>(pending: PromiseLike<unknown>, hook: Name, args: HookArgs<Name>, next: number): Promise<void> {
    await pending;
    await this.invokeBefore(hook, args, next);
  }

  private async finishAfter<Name extends AsyncHookName>(
    pending: PromiseLike<unknown>,
    middleware: Middleware,
    hook: Name,
    args: HookArgs<Name>,
    next: number,
  ): Promise<void> {
    try {
      await pending;
    } catch (error) {
      this.logHookFailure(middleware, hook, error);
    }
    await this.invokeAfter(hook, args, next);
  }

  private logHookFailure(middleware: Middleware, hook: AsyncHookName, error: unknown): void {
    this.logger.error({ err: error, middleware: middleware.name, hook }, `Unexpected failure in ${hook} of ${middleware.name}.`);
  }

  /**
   * Returns the middleware that implement `hook`, in call order. The list is
   * cached per hook and rebuilt when `middleware` changed, compared entry by
   * entry because it is a public array that code may change directly.
   */
  private hookCalls(hook: AsyncHookName): readonly HookCall[] {
    const plan = this.hookPlans.get(hook);
    if (plan !== undefined && sameEntries(plan.source, this.middleware)) {
      return plan.calls;
    }

    const reverse = hook === "afterProcessMessage" || hook === "afterSkipMessage";
    const ordered = reverse ? [...this.middleware].reverse() : this.middleware;
    const calls: HookCall[] = [];
    for (const middleware of ordered) {
      // Called with the middleware as `this` in invokeBefore/invokeAfter.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      const method = middleware[hook] as HookMethod | undefined;
      if (method !== undefined) {
        calls.push({ middleware, method });
      }
    }
    this.hookPlans.set(hook, { source: [...this.middleware], calls });
    return calls;
  }

  /**
   * Registers an actor. Throws a ConfigurationError for a duplicate name or
   * an option that no installed middleware reads.
   */
  declareActor(actor: Actor): void {
    this.validateActorOptions(actor.actorName, actor.options);
    if (this.actors.has(actor.actorName)) {
      throw new ConfigurationError(
        `An actor named ${JSON.stringify(actor.actorName)} is already declared on this broker; give one of them another actorName.`,
      );
    }

    this.emitSync("beforeDeclareActor", actor);
    this.declareQueue(actor.queueName);
    this.actors.set(actor.actorName, actor);
    this.emitSync("afterDeclareActor", actor);
  }

  /** Throws a ConfigurationError naming the first option that no middleware reads. */
  validateActorOptions(actorName: string, options: Record<string, unknown>): void {
    const known = this.actorOptions;
    for (const name of Object.keys(options)) {
      if (known.has(name)) {
        continue;
      }

      const hint = name.includes("_") ? ` Options are camelCase in TypeScript: did you mean ${JSON.stringify(toApiName(name))}?` : "";
      throw new ConfigurationError(
        `Actor ${JSON.stringify(actorName)} has the unknown option ${JSON.stringify(name)}.${hint} ` +
          "If a middleware reads it, add that middleware to the broker before declaring the actor.",
      );
    }
  }

  /** Returns the actor called `actorName`, or throws ActorNotFoundError. */
  getActor(actorName: string): Actor {
    const actor = this.actors.get(actorName);
    if (actor === undefined) {
      throw new ActorNotFoundError(`Actor ${JSON.stringify(actorName)} is not declared on this broker.`);
    }
    return actor;
  }

  /** Registers a canonical queue and its delay queue. Declaring a queue twice does nothing. */
  declareQueue(queueName: string): void {
    validateQueueName(queueName);
    if (this.queues.has(queueName)) {
      return;
    }

    this.emitSync("beforeDeclareQueue", queueName);
    this.queues.add(queueName);
    this.emitSync("afterDeclareQueue", queueName);

    const delayed = delayQueueName(queueName);
    this.delayQueues.add(delayed);
    this.emitSync("afterDeclareDelayQueue", delayed);
  }

  /** Canonical queues declared so far. */
  getDeclaredQueues(): Set<string> {
    return new Set(this.queues);
  }

  /** Delay queues (`<q>.DQ`) declared so far. */
  getDeclaredDelayQueues(): Set<string> {
    return new Set(this.delayQueues);
  }

  /**
   * Enqueues a message, after `delay` ms if given, and returns the message
   * as it was put on the queue (for a delay: on `<q>.DQ` with an `eta`).
   */
  async enqueue(message: Message, options: EnqueueOptions = {}): Promise<Message> {
    const { delay } = options;
    if (delay !== undefined && (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0)) {
      throw new ConfigurationError(`Invalid delay ${String(delay)}: it must be a finite number of milliseconds, 0 or more.`);
    }

    const queueName = canonicalQueueName(message.queueName);
    this.declareQueue(queueName);
    await this.emitBefore("beforeEnqueue", message, delay);

    let outgoing = this.prepareForQueue(message.copy({ queueName }));
    if (delay !== undefined) {
      // Python Dramatiq adds `eta` after any broker-specific option, and the
      // key order is visible on the wire.
      outgoing = outgoing.copy({
        queueName: delayQueueName(queueName),
        options: { ...outgoing.options, eta: (options.now ?? Date.now()) + Math.floor(delay) },
      });
    }

    await this.publish(outgoing);
    await this.emitAfter("afterEnqueue", outgoing, delay);
    enqueuingBrokers.set(outgoing, this);
    return outgoing;
  }

  /** Adds broker-specific options to a message about to be enqueued (the Redis broker adds its message id). */
  protected prepareForQueue(message: Message): Message {
    return message;
  }

  /** Puts an encoded message on the queue named by `message.queueName` (`<q>` or `<q>.DQ`). */
  protected abstract publish(message: Message): Promise<void>;

  /**
   * Checks that the broker server can be reached, opening the connection.
   * Throws ConnectionFailedError when it cannot.
   */
  abstract connect(): Promise<void>;

  /** Returns a consumer for `queueName` (a canonical queue or a delay queue). */
  abstract consume(queueName: string, options: ConsumeOptions): Consumer;

  /** Drops every message in a queue, its delay queue and its dead-letter queue, as Python Dramatiq's flush does. */
  abstract flush(queueName: string): Promise<void>;

  /** Drops every message in every declared queue, delay queue and dead-letter queue. */
  abstract flushAll(): Promise<void>;

  /**
   * Returns the number of messages in one queue: `<q>`, `<q>.DQ` or `<q>.XQ`.
   * What counts differs by broker (RabbitMQ counts only messages ready for
   * delivery; Redis and the stub also count delivered, unacked ones), so use
   * it for monitoring, not for coordination.
   */
  abstract queueDepth(queueName: string): Promise<number>;

  /** Waits until a queue and its delay queue are empty and nothing is in flight. */
  abstract join(queueName: string, options?: JoinOptions): Promise<void>;

  /** Closes connections. The broker can be used again afterwards: it reconnects on demand. */
  abstract close(): Promise<void>;
}

/**
 * The global broker lives on `globalThis` under a registered symbol, so that
 * two copies of this package in one process (a bundled app and a CLI
 * installed elsewhere, or `src/` beside `dist/`) still share it.
 */
const globalBrokerKey = Symbol.for("melodramatiq.globalBroker");
const globalSlot = globalThis as { [globalBrokerKey]?: Broker };

/** Makes `broker` the one that actors without an explicit `broker` option are declared on. */
export function setBroker(broker: Broker): void {
  globalSlot[globalBrokerKey] = broker;
}

/**
 * Returns the global broker. Unlike Python Dramatiq this never creates a
 * broker that connects to localhost. A missing broker is an error that
 * explains how to set one.
 */
export function getBroker(): Broker {
  const broker = globalSlot[globalBrokerKey];
  if (broker === undefined) {
    throw new ConfigurationError(
      "No global broker is set. Call setBroker(broker) before declaring actors, or pass { broker } in the actor options.",
    );
  }
  return broker;
}

/** Returns the global broker, or undefined when none is set. */
export function getBrokerIfSet(): Broker | undefined {
  return globalSlot[globalBrokerKey];
}
