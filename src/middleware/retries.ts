/**
 * Retries: a message whose actor throws is enqueued again after an
 * exponential backoff, with `retries`, `traceback` and `requeue_timestamp`
 * recorded in its options the way Python Dramatiq records them. Once
 * `maxRetries` is reached, the message is failed and dead-lettered.
 */

import { isActor, type Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import { ActorNotFoundError, BrokerConnectionError, ConfigurationError, Retry, toError } from "../errors.js";
import { getLogger } from "../logger.js";
import { canonicalQueueName } from "../message/queue-names.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { computeBackoff, MAX_BACKOFF_CAP } from "./backoff.js";
import { Middleware, type ProcessOutcome } from "./middleware.js";
import { findActor, optionChecks, resolveCheckedOption, resolveOption } from "./options.js";

/** Options of the Retries middleware: defaults for actors and messages that set none. */
export interface RetriesOptions {
  /** @defaultValue 20 */
  maxRetries?: number | null;
  /** Backoff base in ms. @defaultValue 15000 */
  minBackoff?: number;
  /** Backoff ceiling in ms, capped at 7 days. @defaultValue 604800000 */
  maxBackoff?: number;
}

/** Maximum length of the traceback text stored in a message, in characters, so retried bodies stay small. */
const MAX_TRACEBACK_LENGTH = 8000;

export class Retries extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set([
    "maxRetries",
    "minBackoff",
    "maxBackoff",
    "retryWhen",
    "throws",
    "onRetryExhausted",
  ]);

  readonly maxRetries: number | null;
  readonly minBackoff: number;
  readonly maxBackoff: number;
  private readonly logger = getLogger("melodramatiq.middleware.Retries");

  constructor(options: RetriesOptions = {}) {
    super();
    this.maxRetries = options.maxRetries === undefined ? 20 : options.maxRetries;
    this.minBackoff = options.minBackoff ?? 15000;
    this.maxBackoff = options.maxBackoff ?? MAX_BACKOFF_CAP;
  }

  /** Rejects actor options of the wrong type when the actor is declared, naming the option and the fix. */
  override beforeDeclareActor(_broker: Broker, actor: Actor): void {
    const options = actor.options;
    const where = `actor ${JSON.stringify(actor.actorName)}`;
    const counts: [string, boolean][] = [
      ["maxRetries", true],
      ["minBackoff", false],
      ["maxBackoff", false],
    ];
    for (const [name, nullable] of counts) {
      if (!Object.hasOwn(options, name)) {
        continue;
      }
      const value = options[name];
      const valid = (nullable && value === null) || (typeof value === "number" && Number.isInteger(value) && value >= 0);
      if (!valid) {
        const expected = nullable ? "a whole number of 0 or more, or null for no limit" : "a whole number of milliseconds, 0 or more";
        throw new ConfigurationError(`Invalid ${name} ${String(value)} on ${where}: it must be ${expected}.`);
      }
    }

    if (Object.hasOwn(options, "retryWhen") && typeof options["retryWhen"] !== "function") {
      throw new ConfigurationError(`Invalid retryWhen on ${where}: it must be a function (retries, error) => boolean.`);
    }
    const exhausted = options["onRetryExhausted"];
    if (exhausted !== undefined && typeof exhausted !== "string" && !isActor(exhausted)) {
      throw new ConfigurationError(`Invalid onRetryExhausted on ${where}: it must be an actor or an actor name.`);
    }

    const throws = options["throws"];
    if (throws !== undefined && !(Array.isArray(throws) && throws.every((errorClass) => typeof errorClass === "function"))) {
      throw new ConfigurationError(`Invalid throws on ${where}: it must be an array of error classes, e.g. [ValidationError].`);
    }
  }

  override afterProcessMessage(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): Promise<void> | undefined {
    const { error } = outcome;
    // Synchronous for successes, so that most messages cost no promise here.
    if (error === undefined || error instanceof ActorNotFoundError) {
      return undefined;
    }
    return this.handleFailure(broker, message, error);
  }

  private async handleFailure(broker: Broker, message: MessageProxy, error: Error): Promise<void> {

    const actor = findActor(broker, message.actorName);
    const logFields = { messageId: message.messageId, actorName: message.actorName };
    const throws = resolveOption(message.options, actor, "throws", undefined, "or");
    if (Array.isArray(throws) && throws.some((errorClass) => typeof errorClass === "function" && error instanceof errorClass)) {
      this.logger.info({ ...logFields, err: error }, `Aborting message '${message.messageId}': ${error.name} is listed in throws.`);
      message.fail(error);
      return;
    }

    const options = message.options;
    const attempts = readCount(options["retries"]);
    options["retries"] = attempts + 1;
    options["traceback"] = (error.stack ?? `${error.name}: ${error.message}`).slice(0, MAX_TRACEBACK_LENGTH);
    const now = Date.now();
    options["requeue_timestamp"] = now;

    if (this.isExhausted(message, actor, attempts, error)) {
      const maxRetries = resolveOption(options, actor, "maxRetries", this.maxRetries);
      this.logger.warn(logFields, `Retries exceeded for message '${message.messageId}'.`);
      message.fail(error);
      await this.notifyExhausted(broker, message, attempts, maxRetries);
      return;
    }

    const requested = error instanceof Retry ? error.delay : undefined;
    // A Retry-After time already past gives a negative delay, which Python
    // Dramatiq treats as "now". NaN stays invalid, and enqueue rejects it.
    const delay = requested === undefined ? this.backoffFor(message, actor, attempts) : Math.max(0, requested);
    this.logger.info({ ...logFields, delay }, `Retrying message '${message.messageId}' in ${delay} milliseconds.`);
    try {
      await broker.enqueue(message.message.copy({ queueName: canonicalQueueName(message.queueName) }), { delay, now });
    } catch (enqueueError) {
      this.retryNotEnqueued(message, error, enqueueError);
      return;
    }
    message.retryScheduled = true;
  }

  /**
   * Handles a retry copy that the broker did not take. When the broker was
   * unreachable, dead-lettering would end a message that has retries left,
   * and acking would lose it. So it goes back to its queue as delivered and
   * runs again at once, without counting this attempt, which means an
   * outage can make it run more often than maxRetries allows. Any other
   * error (an invalid delay, a middleware that rejects the copy) would fail
   * every time, so the message is dead-lettered instead of looping.
   */
  private retryNotEnqueued(message: MessageProxy, error: Error, enqueueError: unknown): void {
    const logFields = { messageId: message.messageId, actorName: message.actorName, err: enqueueError };
    const reason = toError(enqueueError).message;
    if (enqueueError instanceof BrokerConnectionError) {
      this.logger.error(logFields, `Failed to enqueue the retry of message '${message.messageId}': ${reason} Returning the message to its queue instead.`);
      message.requeueRequested = true;
      return;
    }

    this.logger.error(logFields, `Failed to enqueue the retry of message '${message.messageId}': ${reason} Moving the message to the dead-letter queue.`);
    message.fail(error);
  }

  private isExhausted(message: MessageProxy, actor: Actor | undefined, attempts: number, error: Error): boolean {
    const retryWhen = resolveOption(message.options, actor, "retryWhen", undefined);
    if (typeof retryWhen === "function") {
      return !(retryWhen as (retries: number, error: Error) => boolean)(attempts, error);
    }

    const maxRetries = resolveCheckedOption(message, actor, "maxRetries", this.maxRetries, {
      check: optionChecks.nonNegative,
      allowNull: true,
      logger: this.logger,
    });
    if (maxRetries === null) {
      return false;
    }

    return attempts >= readCount(maxRetries, this.maxRetries ?? 0);
  }

  private backoffFor(message: MessageProxy, actor: Actor | undefined, attempts: number): number {
    const check = { check: optionChecks.nonNegative, logger: this.logger };
    const minBackoff = readCount(resolveCheckedOption(message, actor, "minBackoff", this.minBackoff, check), this.minBackoff);
    const maxBackoff = readCount(resolveCheckedOption(message, actor, "maxBackoff", this.maxBackoff, check), this.maxBackoff);
    return computeBackoff(attempts, minBackoff, Math.min(maxBackoff, MAX_BACKOFF_CAP));
  }

  private async notifyExhausted(broker: Broker, message: MessageProxy, attempts: number, maxRetries: unknown): Promise<void> {
    const option = resolveOption(message.options, findActor(broker, message.actorName), "onRetryExhausted", undefined, "or");
    const target = isActor(option) ? option.actorName : option;
    if (typeof target !== "string" || target === "") {
      return;
    }

    const callback = findActor(broker, target);
    if (callback === undefined) {
      this.logger.error({ messageId: message.messageId, actorName: message.actorName, callback: target }, `onRetryExhausted actor '${target}' is not declared; no notification sent.`);
      return;
    }

    await callback.sendWithOptions({ args: [message.message.toDict(), { retries: attempts, max_retries: maxRetries }] });
  }
}

/** Reads a non-negative integer option, falling back when it is of the wrong type. */
function readCount(value: unknown, fallback = 0): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) {
    return Math.floor(value);
  }
  if (typeof value === "bigint" && value >= 0n) {
    return Number(value);
  }
  return fallback;
}
