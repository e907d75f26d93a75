/**
 * Reading an option that may be set on the message (snake_case, on the
 * wire) or on the actor (camelCase, at declaration). Python Dramatiq has two
 * precedence rules and both matter for interop:
 * - "get": a key present in the message wins even when it is falsy (0, false, null);
 * - "or": a falsy message value falls through to the actor's value.
 */

import type { Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import type { MessageOptions } from "../message/message.js";
import { toWireName } from "../message/option-names.js";

export type Precedence = "get" | "or";

/**
 * Returns the value of option `name` (camelCase) for a message: the
 * message's own value, else the actor's, else `fallback`.
 */
export function resolveOption(
  options: MessageOptions,
  actor: Actor | undefined,
  name: string,
  fallback: unknown,
  precedence: Precedence = "get",
): unknown {
  const wireName = toWireName(name);
  const fromMessage = Object.hasOwn(options, wireName) ? options[wireName] : undefined;
  const takeMessage = precedence === "get" ? Object.hasOwn(options, wireName) : Boolean(fromMessage);
  if (takeMessage) {
    return fromMessage;
  }

  if (actor !== undefined && Object.hasOwn(actor.options, name)) {
    return actor.options[name];
  }

  return fallback;
}

/** Returns the actor a message names, or undefined when it is not declared. */
export function findActor(broker: Broker, actorName: string): Actor | undefined {
  return broker.actors.get(actorName);
}

/** Checks the type of an option value read from a message. */
export type OptionCheck = (value: unknown) => boolean;

/** Common checks for `resolveCheckedOption`. */
export const optionChecks = {
  /** A finite number of 0 or more (counts, durations in ms). */
  nonNegative: (value: unknown): boolean => typeof value === "number" && Number.isFinite(value) && value >= 0,
  /** A number of 0 or more, Infinity allowed (time limits). */
  nonNegativeOrInfinity: (value: unknown): boolean => typeof value === "number" && !Number.isNaN(value) && value >= 0,
  boolean: (value: unknown): boolean => typeof value === "boolean",
  string: (value: unknown): boolean => typeof value === "string",
} satisfies Record<string, OptionCheck>;

/** Logger that `resolveCheckedOption` reports a message option of the wrong type to. */
export interface OptionWarningSink {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Like `resolveOption`, but a message value that fails `check` (another
 * producer sent `max_retries: "3"`, say) is logged with the message id and
 * treated as absent, so the actor's value or the fallback applies. `null`
 * passes through when `allowNull` is set, for options where it means "none".
 */
export function resolveCheckedOption(
  message: { readonly options: MessageOptions; readonly messageId: string; readonly actorName: string },
  actor: Actor | undefined,
  name: string,
  fallback: unknown,
  settings: { check: OptionCheck; precedence?: Precedence; allowNull?: boolean; logger: OptionWarningSink },
): unknown {
  const wireName = toWireName(name);
  const options = message.options;
  if (Object.hasOwn(options, wireName)) {
    const value = options[wireName];
    const acceptable = settings.check(value) || (settings.allowNull === true && value === null);
    if (!acceptable) {
      settings.logger.warn(
        { messageId: message.messageId, actorName: message.actorName, option: wireName, value },
        `Message '${message.messageId}' has an invalid ${wireName} option ${describeValue(value)}; ignoring it.`,
      );
      return resolveOption({}, actor, name, fallback);
    }
  }

  return resolveOption(options, actor, name, fallback, settings.precedence ?? "get");
}

function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === "bigint" ? `${inner}n` : inner)) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
