/**
 * The concurrent limiter: at most `limit` holders at once, a distributed
 * semaphore (a mutex with `limit: 1`).
 */

import type { RateLimiterBackend } from "./backend.js";
import { positiveInteger } from "./options.js";
import { RateLimiter } from "./rate-limiter.js";

/** Options of ConcurrentRateLimiter. */
export interface ConcurrentRateLimiterOptions {
  /** Holders allowed at once. @defaultValue `1` */
  limit?: number;
  /**
   * Milliseconds the count lives after its last change. A holder that dies
   * without releasing keeps its slot until then, so make it longer than the
   * longest run of the limited function. @defaultValue `900000` (15 minutes)
   */
  ttl?: number;
}

/**
 * Lets at most `limit` calls of `acquire()` run at once across every
 * process sharing the backend. The count is the integer stored at `key`:
 * acquiring adds 1 unless that would exceed `limit`, and releasing
 * subtracts 1 down to 0 (the key stays, holding "0"). Each change resets
 * the key's TTL.
 *
 * @example
 * ```ts
 * const mutex = new ConcurrentRateLimiter(backend, "distributed-mutex", { limit: 1 });
 * await mutex.acquire(async () => rebuildSearchIndex());
 * ```
 */
export class ConcurrentRateLimiter extends RateLimiter {
  readonly limit: number;
  readonly ttl: number;

  constructor(backend: RateLimiterBackend, key: string, options: ConcurrentRateLimiterOptions = {}) {
    super(backend, key);
    this.limit = positiveInteger("limit", options.limit ?? 1, "holders");
    this.ttl = positiveInteger("ttl", options.ttl ?? 900_000, "milliseconds");
  }

  protected override async tryAcquire(): Promise<boolean> {
    // SET NX creates the count in one round trip when no slot is taken.
    if (await this.backend.add(this.key, 1, this.ttl)) {
      return true;
    }
    return this.backend.incr(this.key, 1, this.limit, this.ttl);
  }

  protected override async release(): Promise<void> {
    // False means the count expired or was 0 already, and there is nothing to give back.
    await this.backend.decr(this.key, 1, 0, this.ttl);
  }
}
