/**
 * Middleware: objects whose hook methods the broker and the worker call
 * around each step of a message's life. Every hook is optional and may be
 * async. Hooks named `before*` run in middleware order and an error thrown
 * there propagates; hooks named `after*` run in middleware order too (reverse
 * order for `afterProcessMessage` and `afterSkipMessage`, so the middleware
 * added first sees the outcome last) and their errors are logged, not thrown.
 */

import type { Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import type { Message } from "../message/message.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import type { Worker } from "../worker/worker.js";

/** Outcome passed to `afterProcessMessage`: a result, or the error the actor threw. */
export interface ProcessOutcome {
  result?: unknown;
  error?: Error;
}

/** The hook signatures. Declaration hooks run synchronously, because actors are declared at import time. */
export interface MiddlewareHooks {
  beforeDeclareActor?(broker: Broker, actor: Actor): void;
  afterDeclareActor?(broker: Broker, actor: Actor): void;
  beforeDeclareQueue?(broker: Broker, queueName: string): void;
  afterDeclareQueue?(broker: Broker, queueName: string): void;
  afterDeclareDelayQueue?(broker: Broker, queueName: string): void;

  beforeEnqueue?(broker: Broker, message: Message, delay: number | undefined): void | Promise<void>;
  afterEnqueue?(broker: Broker, message: Message, delay: number | undefined): void | Promise<void>;
  beforeDelayMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;

  /** Runs in each worker process after the modules are loaded, before the worker starts. */
  afterProcessBoot?(broker: Broker): void | Promise<void>;
  beforeWorkerBoot?(broker: Broker, worker: Worker): void | Promise<void>;
  afterWorkerBoot?(broker: Broker, worker: Worker): void | Promise<void>;
  beforeWorkerShutdown?(broker: Broker, worker: Worker): void | Promise<void>;
  afterWorkerShutdown?(broker: Broker, worker: Worker): void | Promise<void>;

  /** Throw SkipMessage here to skip the message (it is acked unless failed). */
  beforeProcessMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterProcessMessage?(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): void | Promise<void>;
  afterSkipMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;

  beforeAck?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterAck?(broker: Broker, message: MessageProxy): void | Promise<void>;
  beforeNack?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterNack?(broker: Broker, message: MessageProxy): void | Promise<void>;

  /**
   * Wraps the actor call, e.g. to run it inside an AsyncLocalStorage
   * context. Must call `next()` once and return its result.
   */
  aroundActor?(broker: Broker, message: MessageProxy, next: () => Promise<unknown>): Promise<unknown>;
}

export type SyncHookName =
  | "beforeDeclareActor"
  | "afterDeclareActor"
  | "beforeDeclareQueue"
  | "afterDeclareQueue"
  | "afterDeclareDelayQueue";

export type AsyncHookName = Exclude<keyof MiddlewareHooks, SyncHookName | "aroundActor">;

/** Arguments of a hook after the broker. */
export type HookArgs<Name extends keyof MiddlewareHooks> =
  NonNullable<MiddlewareHooks[Name]> extends (broker: Broker, ...args: infer Rest) => unknown ? Rest : never;

/**
 * Base class for middleware. Subclasses implement the hooks they need and
 * list, in `actorOptions`, the camelCase actor options they read, so that
 * actor declarations can be checked.
 */
// The interface merges the optional hook methods into the class type.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface Middleware extends MiddlewareHooks {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export abstract class Middleware {
  /** Actor options this middleware reads, in camelCase (e.g. `maxRetries`). */
  readonly actorOptions: ReadonlySet<string> = new Set();

  /** Name used in logs and errors. */
  get name(): string {
    return this.constructor.name;
  }
}

/** A middleware class, used to position middleware with `addMiddleware(m, { before, after })`. */
export type MiddlewareClass = abstract new (...args: never[]) => Middleware;
