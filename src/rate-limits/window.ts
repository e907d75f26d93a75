/** The window limiter: at most `limit` acquisitions in any sliding window of `window` seconds. */

import type { RateLimiterBackend } from "./backend.js";
import { positiveInteger, type Clock } from "./options.js";
import { RateLimiter } from "./rate-limiter.js";

/** Options of WindowRateLimiter. */
export interface WindowRateLimiterOptions {
  /** Acquisitions allowed per window. @defaultValue `1` */
  limit?: number;
  /** Length of the window in **seconds**, as in Python Dramatiq. @defaultValue `1` */
  window?: number;
  /** Returns the current UNIX time in ms. Tests pass a fake clock. @defaultValue `Date.now` */
  clock?: Clock;
}

/**
 * Allows `limit` acquisitions in the last `window` seconds, counted per
 * whole second: an acquisition at UNIX second `s` adds 1 to `key@s` when
 * the counters `key@s`, `key@(s-1)`… `key@(s-window+1)` sum to less than
 * `limit`. Each counter lives `window` seconds. Nothing is given back, so
 * the window slides one whole second at a time.
 *
 * @example
 * ```ts
 * // At most 10 calls in any 60 seconds.
 * const limiter = new WindowRateLimiter(backend, "partner-api", { limit: 10, window: 60 });
 * ```
 */
export class WindowRateLimiter extends RateLimiter {
  readonly limit: number;
  /** Window length in seconds. */
  readonly window: number;
  private readonly clock: Clock;

  constructor(backend: RateLimiterBackend, key: string, options: WindowRateLimiterOptions = {}) {
    super(backend, key);
    this.limit = positiveInteger("limit", options.limit ?? 1, "acquisitions");
    this.window = positiveInteger("window", options.window ?? 1, "seconds");
    this.clock = options.clock ?? Date.now;
  }

  protected override async tryAcquire(): Promise<boolean> {
    const second = Math.floor(this.clock() / 1000);
    const keys = Array.from({ length: this.window }, (_, age) => `${this.key}@${second - age}`);
    const [current = this.key] = keys;
    return this.backend.incrAndSum(current, keys, 1, this.limit, this.window * 1000);
  }

  protected override async release(): Promise<void> {}
}
