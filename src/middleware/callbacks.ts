/**
 * Callbacks: after each attempt of a message, send a message to the actor
 * named by `onSuccess` or `onFailure`, the way Python Dramatiq's Callbacks
 * middleware does, so that Python and TypeScript callback actors receive the
 * same arguments.
 */

import { inspect } from "node:util";

import { isActor, type Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import type { MessageDict } from "../message/message.js";
import { describeError } from "../results/envelope.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { Middleware, type ProcessOutcome } from "./middleware.js";
import { findActor, optionChecks, resolveCheckedOption } from "./options.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /** Callbacks: actor (or actor name) sent `(messageDict, result)` after each successful run. */
    onSuccess?: string | Actor;
    /** Callbacks: actor (or actor name) sent `(messageDict, { type, message })` after every failed attempt, retried or not. */
    onFailure?: string | Actor;
  }
}

/** The error description sent to an `onFailure` actor. Results use `msg` instead of `message`, as in Python Dramatiq. */
export interface CallbackFailure {
  /** Error class name (`ValueError`, `TimeLimitExceeded`). */
  type: string;
  /** The error's message. */
  message: string;
}

const callbackOptionNames = ["onSuccess", "onFailure"] as const;

/**
 * Sends callback messages after each attempt. The message option or the
 * actor option names the callback actor, and a message value that is empty
 * falls through to the actor's ("or" precedence):
 * - `onSuccess`: sent `[messageDict, result]` after a successful run;
 * - `onFailure`: sent `[messageDict, { type, message }]` after every failed
 *   attempt, including attempts that Retries will retry.
 *
 * `messageDict` is the processed message's wire form with its options as
 * the middleware after this one left them. Retries comes after Callbacks in
 * the default stack and `afterProcessMessage` runs in reverse order, so an
 * `onFailure` payload already carries `retries` and `traceback`.
 *
 * The callback actor must be declared in the worker process that runs the
 * message, because only its name travels. A missing one is logged as an
 * error and the message itself is unaffected.
 *
 * @example
 *   const report = actor((message: MessageDict, failure: CallbackFailure) => log(failure.type), { actorName: "report" });
 *   const work = actor(doWork, { onFailure: report });
 */
export class Callbacks extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(callbackOptionNames);

  private readonly logger = getLogger("melodramatiq.middleware.Callbacks");

  /** Rejects an `onSuccess`/`onFailure` actor option that is neither an actor nor a non-empty actor name. */
  override beforeDeclareActor(_broker: Broker, actor: Actor): void {
    for (const name of callbackOptionNames) {
      const value = actor.options[name];
      if (value === undefined || isActor(value) || (typeof value === "string" && value !== "")) {
        continue;
      }

      throw new ConfigurationError(
        `Actor ${JSON.stringify(actor.actorName)} has an invalid ${name} option ${inspect(value)}: pass an actor or the name of an actor.`,
      );
    }
  }

  override afterProcessMessage(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): Promise<void> | undefined {
    const { error } = outcome;
    const optionName = error === undefined ? "onSuccess" : "onFailure";
    const targetName = this.resolveTarget(broker, message, optionName);
    // Synchronous without a callback, so that most messages cost no promise here.
    if (targetName === undefined) {
      return undefined;
    }
    return this.sendCallback(broker, message, outcome, optionName, targetName);
  }

  private async sendCallback(broker: Broker, message: MessageProxy, outcome: ProcessOutcome, optionName: string, targetName: string): Promise<void> {
    const { error } = outcome;

    const fields = { messageId: message.messageId, actorName: message.actorName, callback: targetName };
    const target = findActor(broker, targetName);
    if (target === undefined) {
      this.logger.error(
        fields,
        `${optionName} actor '${targetName}' of message '${message.messageId}' is not declared in this worker process; no callback sent. ` +
          "Import the module that declares it in the worker.",
      );
      return;
    }

    const payload = error === undefined ? toJsonValue(outcome.result) : describeFailure(error);
    await target.sendWithOptions({ args: [snapshotDict(message), payload] });
    this.logger.debug(fields, `Sent ${optionName} callback '${targetName}' for message '${message.messageId}'.`);
  }

  private resolveTarget(broker: Broker, message: MessageProxy, optionName: (typeof callbackOptionNames)[number]): string | undefined {
    const value = resolveCheckedOption(message, findActor(broker, message.actorName), optionName, undefined, {
      check: optionChecks.string,
      precedence: "or",
      allowNull: true,
      logger: this.logger,
    });
    if (isActor(value)) {
      return value.actorName;
    }

    return typeof value === "string" && value !== "" ? value : undefined;
  }
}

/** Builds the `onFailure` payload: the error's class name, in Python's spelling for melodramatiq errors, and its message. */
function describeFailure(error: Error): CallbackFailure {
  return { type: describeError(error).type, message: error.message };
}

/** Copies the wire form, so that later changes to the processed message's options do not leak into the callback. */
function snapshotDict(message: MessageProxy): MessageDict {
  const dict = message.message.toDict();
  return { ...dict, options: { ...dict.options } };
}

/** An actor that returns nothing sends `null`, as Python's `None`. */
function toJsonValue(result: unknown): unknown {
  return result === undefined ? null : result;
}
