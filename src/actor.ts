/**
 * Actors: functions that run in workers when a message names them. An actor
 * is built with `actor(fn, options)` and is itself callable, running `fn`
 * directly; `send()` enqueues a message for a worker instead.
 *
 * Keyword arguments: Python callers can send `kwargs`. A TypeScript actor
 * receives them as one extra, trailing plain object after the positional
 * arguments, and only when the message carries at least one kwarg. Declare
 * the function as `(to: string, options?: { subject?: string })` to accept
 * `send_email.send("a@example.com", subject="Hi")` from Python.
 */

import { getBroker, type Broker, type EnqueueOptions } from "./broker.js";
import { ConfigurationError } from "./errors.js";
import { Message } from "./message/message.js";
import { toWireOptions } from "./message/option-names.js";
import { validateQueueName } from "./message/queue-names.js";
import type { TaskContext } from "./worker/context.js";

/** Any function can be an actor; its parameters type `send()`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ActorFunction = (...args: any[]) => unknown;

/**
 * Actor options read by the bundled middleware, in camelCase. Custom
 * middleware can add its own by declaration merging on this interface.
 */
export interface MiddlewareActorOptions {
  /** Retries: maximum retries before the message is dead-lettered; `null` retries forever. @defaultValue 20 */
  maxRetries?: number | null;
  /** Retries: backoff base in ms. @defaultValue 15000 */
  minBackoff?: number;
  /** Retries: backoff ceiling in ms, capped at 7 days. @defaultValue 604800000 */
  maxBackoff?: number;
  /** Retries: decides per failure whether to retry, replacing `maxRetries`. */
  retryWhen?: (retries: number, error: Error) => boolean;
  /** Retries: error classes that fail the message at once, without retries. */
  throws?: readonly (abstract new (...args: never[]) => Error)[];
  /** Retries: actor (or actor name) sent `(messageDict, { retries, max_retries })` when retries run out. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onRetryExhausted?: string | Actor<any>;
}

/** Options of `actor()`. */
export interface ActorOptions extends MiddlewareActorOptions {
  /** Name that messages address; needed to interoperate with Python actors such as `send_welcome_email`. @defaultValue the function's name */
  actorName?: string;
  /** Queue the actor's messages go to. @defaultValue `"default"` */
  queueName?: string;
  /** Order among messages already fetched by one worker process; lower runs first. Never sent to the broker. @defaultValue 0 */
  priority?: number;
  /** Broker to declare the actor on. @defaultValue the global broker (`setBroker`) */
  broker?: Broker;
}

/** Message options in camelCase, as accepted by `sendWithOptions()` and `messageWithOptions()`. */
export interface SendOptions<Args extends readonly unknown[]> {
  /** Positional arguments. @defaultValue `[]` */
  args?: Args;
  /** Keyword arguments, for Python actors or TypeScript actors that take a trailing options object. */
  kwargs?: Record<string, unknown>;
  /** Milliseconds before the message becomes available. Not stored in the message by `sendWithOptions()`. */
  delay?: number;
  /** Any other option, e.g. `maxRetries`, `timeLimit`, `brokerPriority`; sent in snake_case. */
  [option: string]: unknown;
}

/** Methods and properties of an actor, besides being callable. */
export interface Actor<F extends ActorFunction = ActorFunction> {
  readonly fn: F;
  readonly actorName: string;
  readonly queueName: string;
  readonly priority: number;
  /** Middleware options given at declaration, in camelCase. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly broker: Broker;

  /** Builds a message for this actor without sending it. */
  message(...args: Parameters<F>): Message<Parameters<F>>;
  /** Builds a message with options without sending it. A `delay` is stored in the options, for pipelines. */
  messageWithOptions(options: SendOptions<Parameters<F>>): Message<Parameters<F>>;
  /** Enqueues a message for this actor and returns it as enqueued. */
  send(...args: Parameters<F>): Promise<Message<Parameters<F>>>;
  /** Enqueues a message with options (`delay`, `kwargs`, message options) and returns it as enqueued. */
  sendWithOptions(options: SendOptions<Parameters<F>>): Promise<Message<Parameters<F>>>;
  /**
   * Runs the function with the arguments of a message, as a worker does.
   * A worker passes the task's `context`, which becomes the function's `this`.
   */
  invoke(args: readonly unknown[], kwargs: Record<string, unknown>, context?: TaskContext): unknown;
}

/** An actor: callable like `fn`, with the `Actor` methods. */
export type CallableActor<F extends ActorFunction> = F & Actor<F>;

const actorPrototype = {
  message(this: Actor, ...args: unknown[]): Message {
    return this.messageWithOptions({ args });
  },

  messageWithOptions(this: Actor, options: SendOptions<unknown[]>): Message {
    const { args = [], kwargs = {}, ...rest } = options;
    if (!Array.isArray(args)) {
      throw new ConfigurationError(
        `Invalid args for actor ${JSON.stringify(this.actorName)}: expected an array of positional arguments, got ${describeType(args)}.`,
      );
    }
    if (typeof kwargs !== "object" || kwargs === null || Array.isArray(kwargs)) {
      throw new ConfigurationError(
        `Invalid kwargs for actor ${JSON.stringify(this.actorName)}: expected a plain object of keyword arguments, got ${describeType(kwargs)}.`,
      );
    }

    return new Message({
      queueName: this.queueName,
      actorName: this.actorName,
      args: [...args],
      kwargs,
      options: toWireOptions(replaceActorsByName(rest)),
    });
  },

  async send(this: Actor, ...args: unknown[]): Promise<Message> {
    return this.sendWithOptions({ args });
  },

  async sendWithOptions(this: Actor, options: SendOptions<unknown[]>): Promise<Message> {
    const { delay, ...rest } = options;
    const message = this.messageWithOptions(rest);
    const enqueueOptions: EnqueueOptions = delay === undefined ? {} : { delay };
    return this.broker.enqueue(message, enqueueOptions);
  },

  invoke(this: Actor, args: readonly unknown[], kwargs: Record<string, unknown>, context?: TaskContext): unknown {
    const callArgs = Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
    return context === undefined ? this.fn(...callArgs) : this.fn.call(context, ...callArgs);
  },
};

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

// Actors are functions, so they keep call/apply/bind.
Object.setPrototypeOf(actorPrototype, Function.prototype);

/**
 * Replaces every option value that is an actor with its name, so that
 * `onSuccess: notify` travels as `"on_success": "notify"` as in Python
 * Dramatiq. A function cannot be encoded anyway, so no other option loses.
 */
function replaceActorsByName(options: Record<string, unknown>): Record<string, unknown> {
  const replaced: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    replaced[name] = isActor(value) ? value.actorName : value;
  }

  return replaced;
}

/** Reports whether `value` was built by `actor()`. */
export function isActor(value: unknown): value is Actor {
  return typeof value === "function" && Object.getPrototypeOf(value) === actorPrototype;
}

/**
 * Declares an actor on `options.broker` or the global broker.
 *
 * @throws ConfigurationError for an invalid queue name, a missing name, a
 *   duplicate name or an option that no installed middleware reads.
 * @example
 *   const sendWelcomeEmail = actor(async (to: string) => mailer.send(to), { actorName: "send_welcome_email" });
 *   await sendWelcomeEmail.send("a@example.com");
 */
export function actor<F extends ActorFunction>(fn: F, options: ActorOptions = {}): CallableActor<F> {
  if (typeof fn !== "function") {
    throw new ConfigurationError(`actor() needs a function as its first argument, not ${typeof fn}.`);
  }

  const { actorName = fn.name, queueName = "default", priority = 0, broker, ...middlewareOptions } = options;
  if (typeof actorName !== "string" || actorName === "") {
    throw new ConfigurationError("The actor has no name: pass a named function or set the actorName option.");
  }

  validateQueueName(queueName);
  if (typeof priority !== "number" || !Number.isFinite(priority)) {
    throw new ConfigurationError(`Invalid priority ${String(priority)} for actor ${JSON.stringify(actorName)}: it must be a number.`);
  }

  const target = broker ?? getBroker();
  const callable = function (this: unknown, ...args: unknown[]): unknown {
    return fn.apply(this, args);
  };
  Object.setPrototypeOf(callable, actorPrototype);
  Object.defineProperties(callable, {
    fn: { value: fn, enumerable: true },
    actorName: { value: actorName, enumerable: true },
    queueName: { value: queueName, enumerable: true },
    priority: { value: priority, enumerable: true },
    options: { value: Object.freeze({ ...middlewareOptions }), enumerable: true },
    broker: { value: target, enumerable: true },
  });

  const created = callable as unknown as CallableActor<F>;
  target.declareActor(created);
  return created;
}
