/**
 * TimeLimit: an actor call that runs longer than its `timeLimit` is failed
 * with TimeLimitExceededError, which the Retries middleware retries like
 * any other error.
 *
 * When the limit passes, the task is interrupted: its AbortSignal aborts
 * with the error as reason and the worker fails the message at once, so the
 * concurrency slot is freed even if the actor's promise never settles.
 * Node cannot stop the actor itself. An actor that ignores its signal keeps
 * running in the background, and its eventual result is ignored. An actor
 * that blocks the event loop (a synchronous loop) cannot be interrupted at
 * all, so it is failed with TimeLimitExceededError when it returns late.
 *
 * One timer serves every task. It is armed for the earliest deadline and
 * re-armed only when a new task's deadline comes sooner, so at the default
 * limit of 10 minutes a busy worker touches the timer about once per limit,
 * not once per message.
 */

import { inspect } from "node:util";

import type { Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import { ConfigurationError, TimeLimitExceededError } from "../errors.js";
import { getLogger } from "../logger.js";
import { InFlightList, type InFlightEntry } from "../worker/in-flight-list.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import type { RunningTask } from "../worker/running-task.js";
import { Middleware } from "./middleware.js";
import { findActor, optionChecks, resolveCheckedOption } from "./options.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /**
     * TimeLimit: milliseconds an actor call may run before it fails with
     * TimeLimitExceededError; `Infinity` or `null` means no limit.
     * @defaultValue the TimeLimit middleware's `timeLimit` (600000)
     */
    timeLimit?: number | null;
  }
}

/** Options of the TimeLimit middleware. */
export interface TimeLimitOptions {
  /** Time limit in ms for actors and messages that set none; `Infinity` or `null` means no limit. @defaultValue `600000` */
  timeLimit?: number | null;
}

/** Time limit when neither the middleware, the actor nor the message sets one, as in Python Dramatiq. */
export const DEFAULT_TIME_LIMIT = 600_000;

/** Maximum delay that setTimeout accepts; a longer one fires after 1 ms. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** A running task with a limit, in the `performance.now()` clock. */
interface Deadline {
  readonly task: RunningTask;
  readonly limit: number;
  readonly expiresAt: number;
}

/**
 * Fails actor calls that run past their time limit, in ms. The limit comes
 * from the message option `time_limit`, else the actor option `timeLimit`,
 * else this middleware's `timeLimit`. A message value of 0 or `null` falls
 * through to the actor's, as in Python Dramatiq; send `timeLimit: Infinity`
 * to lift the limit for one message.
 *
 * @example
 *   const crawl = actor(
 *     async function (this: TaskContext, url: string) {
 *       await fetch(url, { signal: this.signal });
 *     },
 *     { actorName: "crawl", timeLimit: 30_000 },
 *   );
 */
export class TimeLimit extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["timeLimit"]);

  /** Default time limit in ms, or null for none. */
  readonly timeLimit: number | null;
  private readonly logger = getLogger("melodramatiq.middleware.TimeLimit");
  private readonly deadlines = new InFlightList<Deadline>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires, in the `performance.now()` clock; Infinity while it is not armed. */
  private timerDueAt = Infinity;

  constructor(options: TimeLimitOptions = {}) {
    super();
    this.timeLimit = checkTimeLimit(options.timeLimit === undefined ? DEFAULT_TIME_LIMIT : options.timeLimit, "the TimeLimit middleware");
  }

  override beforeDeclareActor(_broker: Broker, actor: Actor): void {
    if (Object.hasOwn(actor.options, "timeLimit")) {
      checkTimeLimit(actor.options["timeLimit"], `actor ${JSON.stringify(actor.actorName)}`);
    }
  }

  override aroundActor(broker: Broker, message: MessageProxy, next: () => Promise<unknown>): Promise<unknown> {
    const task = message.task;
    const limit = this.limitFor(message, findActor(broker, message.actorName));
    if (task === undefined || limit === undefined) {
      return next();
    }

    const deadline: Deadline = { task, limit, expiresAt: performance.now() + limit };
    return this.runWithin(this.watch(deadline), next);
  }

  /**
   * Runs the actor call and fails it when it settles after its deadline,
   * which is how a call that blocked the event loop past its limit ends.
   * Written with `then()` rather than `async`, which costs one promise less
   * on a path that every message takes.
   */
  private runWithin(entry: InFlightEntry<Deadline>, next: () => Promise<unknown>): Promise<unknown> {
    const deadline = entry.value;
    let pending: Promise<unknown>;
    try {
      pending = next();
    } catch (error) {
      // A synchronous `aroundActor` of an inner middleware threw.
      this.deadlines.remove(entry);
      throw error;
    }

    return pending.then(
      (result: unknown) => {
        this.deadlines.remove(entry);
        if (this.isLate(deadline)) {
          throw this.exceeded(deadline, undefined);
        }
        return result;
      },
      (error: unknown) => {
        this.deadlines.remove(entry);
        throw this.isLate(deadline) ? this.exceeded(deadline, error) : error;
      },
    );
  }

  /** Reports whether a call that just settled ran past its deadline and was not interrupted for it already. */
  private isLate(deadline: Deadline): boolean {
    return deadline.task.interruption === undefined && performance.now() >= deadline.expiresAt;
  }

  private watch(deadline: Deadline): InFlightEntry<Deadline> {
    const entry = this.deadlines.add(deadline);
    if (deadline.expiresAt < this.timerDueAt) {
      this.arm(deadline.expiresAt);
    }
    return entry;
  }

  private arm(dueAt: number): void {
    clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    const delay = Math.min(MAX_TIMER_DELAY, Math.max(0, Math.ceil(dueAt - performance.now())));
    this.timer = setTimeout(() => {
      this.expire();
    }, delay);
    // The worker's consumers keep the process alive; a pending limit must not.
    this.timer.unref();
  }

  /** Interrupts every task past its deadline, then re-arms the timer for the earliest remaining one. */
  private expire(): void {
    this.timer = undefined;
    this.timerDueAt = Infinity;
    const now = performance.now();

    // A task no longer running was interrupted by another middleware, and
    // its actor never settled; it is dropped without a second interruption.
    const ended = this.deadlines.removeWhere((deadline) => !deadline.task.isRunning || deadline.expiresAt <= now);
    for (const deadline of ended) {
      if (deadline.task.isRunning) {
        deadline.task.interrupt(this.exceeded(deadline, undefined));
      }
    }

    let earliest = Infinity;
    for (const deadline of this.deadlines.values()) {
      earliest = Math.min(earliest, deadline.expiresAt);
    }
    if (earliest < Infinity) {
      this.arm(earliest);
    }
  }

  /** Logs that a task ran past its limit and returns the error it fails with. */
  private exceeded(deadline: Deadline, cause: unknown): TimeLimitExceededError {
    const { message } = deadline.task;
    this.logger.warn(
      { messageId: message.messageId, actorName: message.actorName, timeLimit: deadline.limit },
      `Time limit of ${deadline.limit} ms exceeded for message '${message.messageId}' of actor '${message.actorName}'; failing it.`,
    );

    const text = `Actor '${message.actorName}' exceeded its time limit of ${deadline.limit} ms on message '${message.messageId}'.`;
    return new TimeLimitExceededError(text, cause === undefined ? {} : { cause });
  }

  /** Returns the time limit of a message in ms, or undefined when it has none. */
  private limitFor(message: MessageProxy, actor: Actor | undefined): number | undefined {
    // Most messages carry no time_limit: skip the generic lookup, which converts the option name on every call.
    const value = Object.hasOwn(message.options, "time_limit")
      ? resolveCheckedOption(message, actor, "timeLimit", this.timeLimit, { check: isMilliseconds, precedence: "or", allowNull: true, logger: this.logger })
      : actorOption(actor, "timeLimit", this.timeLimit);
    const limit = typeof value === "bigint" ? Number(value) : value;

    if (limit === null || limit === Infinity) {
      return undefined;
    }
    if (typeof limit !== "number" || !optionChecks.nonNegative(limit)) {
      // Only an actor option set before this middleware was added gets here unchecked.
      this.logger.warn(
        { messageId: message.messageId, actorName: message.actorName, timeLimit: value },
        `Actor '${message.actorName}' has an invalid time limit ${inspect(value)}; using ${String(this.timeLimit)} ms instead.`,
      );
      return this.timeLimit ?? undefined;
    }
    return limit;
  }
}

function actorOption(actor: Actor | undefined, name: string, fallback: unknown): unknown {
  return actor !== undefined && Object.hasOwn(actor.options, name) ? actor.options[name] : fallback;
}

/** Reports whether `value` is a duration in ms: a number of 0 or more (Infinity included), or a bigint decoded from a very large integer. */
function isMilliseconds(value: unknown): boolean {
  return optionChecks.nonNegativeOrInfinity(value) || (typeof value === "bigint" && value >= 0n);
}

function checkTimeLimit(value: unknown, owner: string): number | null {
  if (value === null || value === Infinity) {
    return null;
  }
  if (typeof value === "number" && optionChecks.nonNegative(value)) {
    return value;
  }
  throw new ConfigurationError(
    `Invalid timeLimit ${inspect(value)} for ${owner}: it must be a number of milliseconds, 0 or more, or Infinity or null for no limit.`,
  );
}
