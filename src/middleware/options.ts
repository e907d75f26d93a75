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
