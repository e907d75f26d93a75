/**
 * The Results middleware: stores each message's outcome in a result backend
 * so that producers can read it with `message.getResult()`. A return value
 * is stored after a successful run, `null` after a skip, and a failure
 * envelope once the message fails for good. Attempts that will be retried
 * store nothing, so readers wait for the final outcome.
 */

import type { Actor } from "../actor.js";
import { getBrokerIfSet, getEnqueuingBroker, type Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import { EncodeError } from "../message/encoding.js";
import { setDefaultResultReader, type Message, type ResultReader } from "../message/message.js";
import { Middleware, type ProcessOutcome } from "../middleware/middleware.js";
import { resolveOption } from "../middleware/options.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { ResultBackend } from "./backend.js";
import { describeError, type FailureDescription } from "./envelope.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /** Results: store this actor's return value or final failure in the result backend. @defaultValue the Results middleware's `storeResults` (false) */
    storeResults?: boolean;
    /** Results: milliseconds a stored result is kept. @defaultValue the Results middleware's `resultTtl` (600000) */
    resultTtl?: number;
  }
}

/** Options of the Results middleware: the backend, and defaults for actors and messages that set none. */
export interface ResultsOptions {
  /** Storage of the results. */
  backend: ResultBackend;
  /** Default for actors and messages that set no `storeResults`, because the actor option and the message option `store_results` win. @defaultValue `false` */
  storeResults?: boolean;
  /** Milliseconds a result is kept; the actor option and the message option `result_ttl` win. @defaultValue `600000` */
  resultTtl?: number;
}

/** Result TTL when neither the middleware, the actor nor the message sets one, as in Python Dramatiq. */
export const DEFAULT_RESULT_TTL = 600_000;

/** Failure stored for a failed message that carries no error, which only a custom middleware can cause. */
const UNKNOWN_FAILURE: FailureDescription = { type: "Exception", msg: "The message failed without an error." };
const UNKNOWN_SKIP_FAILURE: FailureDescription = { type: "SkipMessage", msg: "The message was skipped and failed." };

/**
 * Stores message outcomes in `backend`. Actor options: `storeResults`
 * (store this actor's results) and `resultTtl` (ms). Producers can set the
 * same per message as `store_results` and `result_ttl`. A message option that
 * is present wins even when it is false or 0, as in Python Dramatiq.
 *
 * Unlike Python Dramatiq, a message that names an unknown actor and requests
 * results in its own options gets a stored failure of type `ActorNotFound`,
 * so that a waiting caller fails at once instead of timing out.
 *
 * @example
 *   broker.addMiddleware(new Results({ backend: new RedisBackend({ url }) }));
 *   const add = actor((a: number, b: number) => a + b, { storeResults: true });
 *   const sum = await (await add.send(1, 2)).getResult({ block: true });
 */
export class Results extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["storeResults", "resultTtl"]);

  readonly backend: ResultBackend;
  readonly storeResults: boolean;
  readonly resultTtl: number;
  private readonly logger = getLogger("melodramatiq.results.Results");
  /** Actors already warned about for returning a value that is not stored; one warning per actor is enough. */
  private readonly warnedActors = new Set<string>();
  private readonly skipped = new WeakSet<MessageProxy>();

  constructor(options: ResultsOptions) {
    super();
    const { backend, storeResults = false, resultTtl = DEFAULT_RESULT_TTL } = options;
    if (!(backend instanceof ResultBackend)) {
      throw new ConfigurationError(
        `Invalid Results backend ${String(backend)}: pass a ResultBackend such as new StubBackend() or new RedisBackend({ url }).`,
      );
    }
    if (typeof resultTtl !== "number" || !Number.isFinite(resultTtl) || resultTtl < 1) {
      throw new ConfigurationError(`Invalid resultTtl ${String(resultTtl)}: it must be a finite number of milliseconds, 1 or more.`);
    }

    this.backend = backend;
    this.storeResults = storeResults;
    this.resultTtl = Math.floor(resultTtl);
    setDefaultResultReader(findDefaultBackend);
  }

  override async afterProcessMessage(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): Promise<void> {
    // A failure is stored from afterNack, once it is final; now it may still be retried.
    if (outcome.error !== undefined) {
      return;
    }

    const actor = broker.actors.get(message.actorName);
    if (!this.wantsResults(message, actor)) {
      this.warnIfDiscarded(message, broker.actors.get(message.actorName), outcome.result);
      return;
    }

    await this.store(message, actor, outcome.result);
  }

  override async afterSkipMessage(broker: Broker, message: MessageProxy): Promise<void> {
    this.skipped.add(message);
    const actor = broker.actors.get(message.actorName);
    if (message.failed || !this.wantsResults(message, actor)) {
      return;
    }

    await this.store(message, actor, null);
  }

  override async afterNack(broker: Broker, message: MessageProxy): Promise<void> {
    const actor = broker.actors.get(message.actorName);
    if (!this.wantsResults(message, actor)) {
      return;
    }

    const fallback = this.skipped.has(message) ? UNKNOWN_SKIP_FAILURE : UNKNOWN_FAILURE;
    const failure = message.error === undefined ? fallback : describeError(message.error);
    await this.storeFailure(message, actor, failure);
  }

  /** Reads `storeResults` with Python's truthiness, so `1` stores and `0`, `""`, `[]` and `{}` do not. */
  private wantsResults(message: MessageProxy, actor: Actor | undefined): boolean {
    return isPythonTruthy(resolveOption(message.options, actor, "storeResults", this.storeResults));
  }

  private resolveTtl(message: MessageProxy, actor: Actor | undefined): number {
    const ttl = resolveOption(message.options, actor, "resultTtl", this.resultTtl);
    const value = typeof ttl === "bigint" ? Number(ttl) : ttl;
    if (typeof value === "number" && Number.isFinite(value) && value >= 1) {
      return Math.floor(value);
    }

    this.logger.warn(
      { messageId: message.messageId, actorName: message.actorName, resultTtl: ttl },
      `Message '${message.messageId}' has an invalid result TTL ${String(ttl)}; keeping its result for ${this.resultTtl} ms instead.`,
    );
    return this.resultTtl;
  }

  /**
   * Stores a return value. A value that cannot be encoded is stored as an
   * EncodeError failure, so the caller learns why instead of timing out.
   */
  private async store(message: MessageProxy, actor: Actor | undefined, value: unknown): Promise<void> {
    const ttl = this.resolveTtl(message, actor);
    const fields = { messageId: message.messageId, actorName: message.actorName };
    try {
      await this.backend.storeResult(message, value, ttl);
      this.logger.debug(fields, `Stored the result of message '${message.messageId}'.`);
      return;
    } catch (error) {
      if (!(error instanceof EncodeError)) {
        this.logger.error({ ...fields, err: error }, `Failed to store the result of message '${message.messageId}'.`);
        return;
      }

      this.logger.error(
        { ...fields, err: error },
        `The result of message '${message.messageId}' cannot be encoded as JSON; storing the EncodeError as its result.`,
      );
      await this.storeFailure(message, actor, describeError(error));
    }
  }

  private async storeFailure(message: MessageProxy, actor: Actor | undefined, failure: FailureDescription): Promise<void> {
    const fields = { messageId: message.messageId, actorName: message.actorName };
    try {
      await this.backend.storeFailure(message, failure, this.resolveTtl(message, actor));
      this.logger.debug({ ...fields, type: failure.type }, `Stored the failure ${failure.type} as the result of message '${message.messageId}'.`);
    } catch (error) {
      this.logger.error({ ...fields, err: error }, `Failed to store the failure of message '${message.messageId}' as its result.`);
    }
  }

  /**
   * Warns, once per actor, that a return value is lost. A pipeline passes it
   * to the next step and an onSuccess callback receives it, so messages with
   * either are exempt.
   */
  private warnIfDiscarded(message: MessageProxy, actor: Actor | undefined, result: unknown): void {
    if (result === undefined || result === null || message.options["pipe_target"] !== undefined) {
      return;
    }
    if (message.options["on_success"] !== undefined || (actor !== undefined && actor.options["onSuccess"] !== undefined)) {
      return;
    }
    if (this.warnedActors.has(message.actorName)) {
      return;
    }

    this.warnedActors.add(message.actorName);
    this.logger.warn(
      { messageId: message.messageId, actorName: message.actorName },
      `Actor '${message.actorName}' returned a value that is not stored in the result backend. ` +
        "Set storeResults: true on the actor (or store_results on the message) to keep it, or return nothing. " +
        "This warning is logged once per actor.",
    );
  }
}

/**
 * Returns the backend of the Results middleware on the broker that enqueued
 * the message, or else on the global broker.
 */
function findDefaultBackend(message: Message<readonly unknown[]>): ResultReader {
  const broker = getEnqueuingBroker(message) ?? getBrokerIfSet();
  if (broker === undefined) {
    throw new ConfigurationError(
      `Message '${message.messageId}' was not returned by broker.enqueue() and no global broker is set, ` +
        "so no result backend can be found: pass { backend } to getResult().",
    );
  }

  const results = broker.middleware.find((middleware) => middleware instanceof Results);
  if (results === undefined) {
    throw new ConfigurationError(
      `The broker of message '${message.messageId}' has no Results middleware: ` +
        "add one with broker.addMiddleware(new Results({ backend })) or pass { backend } to getResult().",
    );
  }
  return results.backend;
}

/** Python's truth value of a decoded JSON value: empty containers, 0, "" and null are false. */
function isPythonTruthy(value: unknown): boolean {
  if (Array.isArray(value)) {
    return value.length > 0;
  }
  if (typeof value === "object" && value !== null) {
    return Object.keys(value).length > 0;
  }
  if (typeof value === "number") {
    return value !== 0;
  }

  return Boolean(value);
}
