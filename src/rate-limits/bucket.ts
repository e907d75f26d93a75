/** The bucket limiter: at most `limit` acquisitions per fixed time bucket. */

import type { RateLimiterBackend } from "./backend.js";
import { positiveInteger, type Clock } from "./options.js";
import { RateLimiter } from "./rate-limiter.js";

/** Options of BucketRateLimiter. */
export interface BucketRateLimiterOptions {
  /** Acquisitions allowed per bucket. @defaultValue `1` */
  limit?: number;
  /** Length of a bucket in **milliseconds**. @defaultValue `1000` */
  bucket?: number;
  /** Returns the current UNIX time in ms. Tests pass a fake clock. @defaultValue `Date.now` */
  clock?: Clock;
}

/**
 * Allows `limit` acquisitions per bucket of `bucket` ms. Buckets are aligned
 * to the UNIX epoch, so every process agrees on them: an acquisition at
 * time `t` counts in `key@<t - t mod bucket>`, which lives one bucket
 * length. A burst of up to 2 × `limit` can straddle two buckets.
 *
 * @example
 * ```ts
 * // At most 5 calls per wall-clock minute.
 * const limiter = new BucketRateLimiter(backend, "newsletter", { limit: 5, bucket: 60_000 });
 * ```
 */
export class BucketRateLimiter extends RateLimiter {
  readonly limit: number;
  /** Bucket length in ms. */
  readonly bucket: number;
  private readonly clock: Clock;

  constructor(backend: RateLimiterBackend, key: string, options: BucketRateLimiterOptions = {}) {
    super(backend, key);
    this.limit = positiveInteger("limit", options.limit ?? 1, "acquisitions");
    this.bucket = positiveInteger("bucket", options.bucket ?? 1000, "milliseconds");
    this.clock = options.clock ?? Date.now;
  }

  protected override async tryAcquire(): Promise<boolean> {
    const now = Math.floor(this.clock());
    const bucketKey = `${this.key}@${now - (now % this.bucket)}`;
    if (await this.backend.add(bucketKey, 1, this.bucket)) {
      return true;
    }
    return this.backend.incr(bucketKey, 1, this.limit, this.bucket);
  }

  protected override async release(): Promise<void> {}
}
