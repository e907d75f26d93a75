/**
 * GroupCallbacks: counts the children of a group as they succeed and
 * enqueues the group's completion callbacks once all of them have. The
 * producer side is `group()` in src/composition/group.ts.
 */

import type { Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import { Message } from "../message/message.js";
import { RateLimiterBackend } from "../rate-limits/backend.js";
import { Barrier } from "../rate-limits/barrier.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { Middleware, type ProcessOutcome } from "./middleware.js";

/** Barrier TTL when none is given: one day, as in Python Dramatiq. */
export const DEFAULT_BARRIER_TTL = 86_400_000;

/** Options of the GroupCallbacks middleware. */
export interface GroupCallbacksOptions {
  /** Storage of the group barriers; producers and workers must share it. */
  backend: RateLimiterBackend;
  /**
   * Milliseconds a group barrier lives after its last update. A group whose
   * children take longer than this fires its callbacks more than once,
   * because an expired barrier counts as cleared. @defaultValue `86400000` (one day)
   */
  barrierTtl?: number;
}

/**
 * Fires group completion callbacks. `group.run()` creates a barrier named by
 * the group's completion id with one party per child, and stamps every
 * child (the last step of a pipeline child) with the options
 * `group_completion_uuid` and `group_completion_callbacks`. Each time such a
 * message finishes without an error, this middleware takes one party off the
 * barrier. The message that clears it enqueues every callback message exactly
 * as stored, with its fixed id and without a delay.
 *
 * Two properties come from Python Dramatiq's barrier and are kept for
 * interop. A child that fails for good never counts, so its group's
 * callbacks never fire. And a barrier key that is missing (it expired, or
 * another backend was used to create it) counts as cleared on every wait, so
 * each finishing child then enqueues the callbacks again.
 *
 * Producers need this middleware too: `group.run()` finds the backend and
 * the TTL on it.
 */
export class GroupCallbacks extends Middleware {
  readonly backend: RateLimiterBackend;
  readonly barrierTtl: number;
  private readonly logger = getLogger("melodramatiq.middleware.GroupCallbacks");

  constructor(options: GroupCallbacksOptions) {
    super();
    const { backend, barrierTtl = DEFAULT_BARRIER_TTL } = options;
    if (!(backend instanceof RateLimiterBackend)) {
      throw new ConfigurationError(
        `Invalid GroupCallbacks backend ${String(backend)}: pass a rate-limiter backend such as new StubRateLimiterBackend() ` +
          'from "melodramatiq/rate-limits" or new RedisRateLimiterBackend({ url }) from "melodramatiq/rate-limits/redis".',
      );
    }
    if (!Number.isSafeInteger(barrierTtl) || barrierTtl < 1) {
      throw new ConfigurationError(`Invalid barrierTtl ${String(barrierTtl)}: it must be a whole number of milliseconds, 1 or more.`);
    }

    this.backend = backend;
    this.barrierTtl = barrierTtl;
  }

  /** Returns the barrier of the group with completion id `completionId`. */
  barrierFor(completionId: string): Barrier {
    return new Barrier(this.backend, completionId, { ttl: this.barrierTtl });
  }

  override async afterProcessMessage(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): Promise<void> {
    const completionId = message.options["group_completion_uuid"];
    const callbacks = message.options["group_completion_callbacks"];
    if (outcome.error !== undefined || typeof completionId !== "string" || completionId === "") {
      return;
    }
    if (!Array.isArray(callbacks) || callbacks.length === 0) {
      return;
    }

    const fields = { messageId: message.messageId, actorName: message.actorName, groupId: completionId };
    let cleared: boolean;
    try {
      cleared = await this.barrierFor(completionId).wait({ block: false });
    } catch (error) {
      this.logger.error(
        { ...fields, err: error },
        `Failed to count message '${message.messageId}' towards group '${completionId}'; the group's completion callbacks may never fire.`,
      );
      return;
    }

    if (!cleared) {
      this.logger.debug(fields, `Message '${message.messageId}' finished; group '${completionId}' is still waiting for other children.`);
      return;
    }

    this.logger.info({ ...fields, callbacks: callbacks.length }, `Group '${completionId}' completed; enqueueing ${callbacks.length} completion callbacks.`);
    for (const dict of callbacks) {
      await this.enqueueCallback(broker, dict, fields);
    }
  }

  private async enqueueCallback(broker: Broker, dict: unknown, fields: Record<string, unknown>): Promise<void> {
    try {
      await broker.enqueue(Message.fromDict(dict));
    } catch (error) {
      this.logger.error({ ...fields, err: error }, `Failed to enqueue a completion callback of group '${String(fields["groupId"])}'.`);
    }
  }
}
