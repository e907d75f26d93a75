/**
 * The barrier: `parties` processes each call `wait()`, and the last one to
 * arrive clears it. Group completion callbacks use it to run their
 * callbacks once every message of a group has finished.
 */

import { ConfigurationError } from "../errors.js";
import { validateWaitTimeout, type RateLimiterBackend } from "./backend.js";
import { checkBackend, positiveInteger } from "./options.js";

/** Options of Barrier. */
export interface BarrierOptions {
  /**
   * Milliseconds the barrier's keys live after their last change. A barrier
   * that expires before every party arrived counts as cleared on every later
   * wait. @defaultValue `900000` (15 minutes)
   */
  ttl?: number;
}

/** Options of `Barrier.wait()`. */
export interface BarrierWaitOptions {
  /**
   * Wait for the party that clears the barrier instead of returning false
   * at once when this party did not clear it. @defaultValue `true`
   */
  block?: boolean;
  /**
   * Milliseconds a blocking wait lasts, at least 1000. The Redis backend
   * waits in whole seconds, rounding down. Leave it out to wait without a
   * limit. @defaultValue no limit
   */
  timeout?: number;
}

/**
 * A distributed barrier for a known number of parties, stored as the
 * counter at `key` and the event list at `key@events`, as in Python
 * Dramatiq. `create(parties)` stores the count of parties, and each `wait()`
 * subtracts one. The count never drops below 1, because the party that
 * finds it at 1 clears the barrier instead, pushing an event that releases
 * every blocked party. From then on every `wait()` reports the barrier cleared,
 * and so does a wait on a barrier whose key is missing (never created or
 * expired).
 *
 * @example
 * ```ts
 * const barrier = new Barrier(backend, groupId, { ttl: 86_400_000 });
 * await barrier.create(3);
 * // …in each of the three parties:
 * if (await barrier.wait({ block: false })) {
 *   await sendReport(); // only the last party to arrive gets here
 * }
 * ```
 */
export class Barrier {
  readonly ttl: number;
  /** Key of the list that receives the release event. */
  readonly eventsKey: string;

  constructor(
    readonly backend: RateLimiterBackend,
    /** Key of the party counter, used as given, with no namespace. */
    readonly key: string,
    options: BarrierOptions = {},
  ) {
    checkBackend(backend);
    if (typeof key !== "string" || key === "") {
      throw new ConfigurationError(`Invalid barrier key ${JSON.stringify(key)}: it must be a non-empty string.`);
    }

    this.ttl = positiveInteger("ttl", options.ttl ?? 900_000, "milliseconds");
    this.eventsKey = `${key}@events`;
  }

  /** Stores the number of parties. Returns false, changing nothing, when the barrier already exists. */
  async create(parties: number): Promise<boolean> {
    positiveInteger("parties", parties, "parties");
    return this.backend.add(this.key, parties, this.ttl);
  }

  /**
   * Counts this party as arrived. Returns true when this party cleared the
   * barrier or found it cleared; then it needs no wait. Otherwise, with
   * `block: false` it returns false at once, and by default it waits for
   * the party that clears it and returns true, or false when `timeout`
   * passes first.
   *
   * @throws ConfigurationError for a timeout under 1000 ms, before this party is counted.
   */
  async wait(options: BarrierWaitOptions = {}): Promise<boolean> {
    const { block = true, timeout } = options;
    if (block) {
      validateWaitTimeout(timeout);
    }

    // decr refuses to go below 1, so a refusal means the count was at 1 (or the key is missing): cleared.
    const cleared = !(await this.backend.decr(this.key, 1, 1, this.ttl));
    if (cleared) {
      await this.backend.waitNotify(this.eventsKey, this.ttl);
      return true;
    }

    if (!block) {
      return false;
    }
    return this.backend.wait(this.eventsKey, timeout);
  }
}
