/**
 * Pipelines: when a message that carries `pipe_target` succeeds, enqueue the
 * next step of its pipeline, passing the result along. The producer side is
 * `pipeline()` in src/composition/pipeline.ts.
 */

import { inspect } from "node:util";

import type { Broker } from "../broker.js";
import { getLogger } from "../logger.js";
import { Message } from "../message/message.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { Middleware, type ProcessOutcome } from "./middleware.js";
import { findActor, optionChecks } from "./options.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /** Pipelines: do not append this actor's result to the arguments of the next pipeline step. @defaultValue false */
    pipeIgnore?: boolean;
  }
}

/**
 * Enqueues the next pipeline step after a successful message. The step is
 * built from the message option `pipe_target` member for member, so its id
 * and timestamp are the ones fixed when the pipeline was built. The current
 * result is appended to its arguments (`null` for an actor that returns
 * nothing) unless the next step's own `pipe_ignore` option or the current
 * actor's `pipeIgnore` option is truthy. The step is delayed by its own
 * `delay` option, if any.
 *
 * A failed message (one that threw, or that a middleware failed) ends the
 * chain. When Retries retries it and a later attempt succeeds, the chain
 * goes on from there.
 */
export class Pipelines extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["pipeIgnore"]);

  private readonly logger = getLogger("melodramatiq.middleware.Pipelines");

  override afterProcessMessage(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): Promise<void> | undefined {
    const target = message.options["pipe_target"];
    // Synchronous outside pipelines, so that most messages cost no promise here.
    if (outcome.error !== undefined || message.failed || target === undefined || target === null) {
      return undefined;
    }
    return this.enqueueNext(broker, message, outcome, target);
  }

  private async enqueueNext(broker: Broker, message: MessageProxy, outcome: ProcessOutcome, target: unknown): Promise<void> {

    const fields = { messageId: message.messageId, actorName: message.actorName };
    let next: Message;
    try {
      next = Message.fromDict(target);
    } catch (error) {
      this.logger.error(
        { ...fields, err: error },
        `Message '${message.messageId}' has an invalid pipe_target option; the rest of its pipeline is not enqueued.`,
      );
      return;
    }

    const actor = findActor(broker, message.actorName);
    const ignoreResult = Boolean(next.options["pipe_ignore"]) || Boolean(actor?.options["pipeIgnore"]);
    if (!ignoreResult) {
      const result = outcome.result === undefined ? null : outcome.result;
      next = next.copy({ args: [...next.args, result] });
    }

    const delay = this.readDelay(next);
    await broker.enqueue(next, delay === undefined ? {} : { delay });
    this.logger.debug(
      { ...fields, nextMessageId: next.messageId, nextActorName: next.actorName, delay },
      `Enqueued pipeline step '${next.messageId}' (${next.actorName}) after message '${message.messageId}'.`,
    );
  }

  /** Reads the next step's `delay` option; a value that is not a number of 0 or more is logged and ignored. */
  private readDelay(next: Message): number | undefined {
    const delay = next.options["delay"];
    if (delay === undefined || delay === null) {
      return undefined;
    }
    if (optionChecks.nonNegative(delay)) {
      return delay as number;
    }

    this.logger.warn(
      { messageId: next.messageId, actorName: next.actorName, delay },
      `Pipeline step '${next.messageId}' has an invalid delay option ${inspect(delay)}; enqueueing it without a delay.`,
    );
    return undefined;
  }
}
