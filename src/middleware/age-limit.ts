/**
 * AgeLimit: a message older than its `maxAge` is dead-lettered without
 * running its actor. The age counts from the message's `message_timestamp`,
 * which is set when the message is built and kept across retries and
 * delays, so a message retried for too long also ages out.
 */

import { inspect } from "node:util";

import type { Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import { ConfigurationError, SkipMessage } from "../errors.js";
import { getLogger } from "../logger.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { Middleware } from "./middleware.js";
import { findActor, optionChecks, resolveCheckedOption } from "./options.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /**
     * AgeLimit: milliseconds after `message_timestamp` past which the message
     * is dead-lettered unrun; `null` or 0 means no limit.
     * @defaultValue the AgeLimit middleware's `maxAge` (no limit)
     */
    maxAge?: number | null;
  }
}

/** Options of the AgeLimit middleware. */
export interface AgeLimitOptions {
  /** Age limit in ms for actors and messages that set none; `null` or 0 means no limit. @defaultValue `null` */
  maxAge?: number | null;
}

/** Error message of the SkipMessage that fails an expired message; Python Dramatiq stores the same text as the result. */
const AGE_LIMIT_EXCEEDED = "Message age limit exceeded";

/**
 * Fails and skips messages whose age reaches `maxAge` ms: they are
 * dead-lettered, not retried, their actor does not run, and the Results
 * middleware stores the failure `SkipMessage: Message age limit exceeded`.
 *
 * The limit comes from the message option `max_age`, else the actor option
 * `maxAge`, else this middleware's `maxAge`. A message value of 0 or `null`
 * falls through to the actor's, as in Python Dramatiq.
 *
 * @example
 *   const report = actor(buildReport, { maxAge: 60 * 60 * 1000 });
 */
export class AgeLimit extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["maxAge"]);

  /** Default age limit in ms, or null for none. */
  readonly maxAge: number | null;
  private readonly logger = getLogger("melodramatiq.middleware.AgeLimit");

  constructor(options: AgeLimitOptions = {}) {
    super();
    this.maxAge = checkMaxAge(options.maxAge ?? null, "the AgeLimit middleware");
  }

  override beforeDeclareActor(_broker: Broker, actor: Actor): void {
    if (Object.hasOwn(actor.options, "maxAge")) {
      checkMaxAge(actor.options["maxAge"], `actor ${JSON.stringify(actor.actorName)}`);
    }
  }

  override beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    const maxAge = this.maxAgeFor(message, findActor(broker, message.actorName));
    if (maxAge === undefined) {
      return;
    }

    const age = Date.now() - message.message.messageTimestamp;
    if (age < maxAge) {
      return;
    }

    this.logger.warn(
      { messageId: message.messageId, actorName: message.actorName, age, maxAge },
      `Message '${message.messageId}' is ${age} ms old, past its age limit of ${maxAge} ms; dead-lettering it without running actor '${message.actorName}'.`,
    );
    const skip = new SkipMessage(AGE_LIMIT_EXCEEDED);
    message.fail(skip);
    throw skip;
  }

  /** Returns the age limit of a message in ms, or undefined when it has none. */
  private maxAgeFor(message: MessageProxy, actor: Actor | undefined): number | undefined {
    // Most messages carry no max_age: skip the generic lookup, which converts the option name on every call.
    const value = Object.hasOwn(message.options, "max_age")
      ? resolveCheckedOption(message, actor, "maxAge", this.maxAge, { check: isMilliseconds, precedence: "or", allowNull: true, logger: this.logger })
      : actorOption(actor, "maxAge", this.maxAge);
    const maxAge = typeof value === "bigint" ? Number(value) : value;

    // 0 means no limit, as Python Dramatiq tests the value for truth.
    if (typeof maxAge !== "number" || !(maxAge > 0)) {
      return undefined;
    }
    return maxAge;
  }
}

function actorOption(actor: Actor | undefined, name: string, fallback: unknown): unknown {
  return actor !== undefined && Object.hasOwn(actor.options, name) ? actor.options[name] : fallback;
}

/** Reports whether `value` is a duration in ms: a number of 0 or more (Infinity included), or a bigint decoded from a very large integer. */
function isMilliseconds(value: unknown): boolean {
  return optionChecks.nonNegativeOrInfinity(value) || (typeof value === "bigint" && value >= 0n);
}

function checkMaxAge(value: unknown, owner: string): number | null {
  if (value === null) {
    return null;
  }
  if (typeof value === "number" && optionChecks.nonNegativeOrInfinity(value)) {
    return value;
  }
  throw new ConfigurationError(`Invalid maxAge ${inspect(value)} for ${owner}: it must be a number of milliseconds, 0 or more, or null for no limit.`);
}
