/**
 * The rate limiter base: `acquire(fn)` runs `fn` only when the limiter has
 * room, and gives the room back afterwards for limiters that hold it (the
 * concurrent limiter).
 */

import { ConfigurationError, toError } from "../errors.js";
import { getLogger } from "../logger.js";
import type { RateLimiterBackend } from "./backend.js";
import { RateLimitExceededError } from "./errors.js";
import { checkBackend } from "./options.js";

/** Options of `RateLimiter.acquire()`. */
export interface AcquireOptions {
  /**
   * Throw RateLimitExceededError when the limiter is full. With `false`,
   * `acquire()` returns whether `fn` ran instead. @defaultValue `true`
   */
  raiseOnFailure?: boolean;
}

/**
 * Base class of rate limiters. Subclasses decide how one acquisition is
 * counted (`tryAcquire`) and whether it is given back (`release`). Every
 * limiter with the same backend and key shares one count, across processes
 * when the backend is shared, Python processes included.
 */
export abstract class RateLimiter {
  private readonly logger = getLogger("melodramatiq.rate-limits.RateLimiter");

  constructor(
    readonly backend: RateLimiterBackend,
    /** The key the limiter counts under, used as given, with no namespace. */
    readonly key: string,
  ) {
    checkBackend(backend);
    if (typeof key !== "string" || key === "") {
      throw new ConfigurationError(`Invalid rate-limiter key ${JSON.stringify(key)}: it must be a non-empty string.`);
    }
  }

  /**
   * Runs `fn` if the limiter has room and returns what `fn` returns. A
   * concurrent limiter gives its slot back when `fn` settles, even when it
   * throws.
   *
   * @throws RateLimitExceededError when the limiter is full; `fn` does not run.
   * @throws the backend's error when giving the slot back fails after `fn` returned.
   * @example
   * ```ts
   * await limiter.acquire(async () => callPartnerApi());
   * ```
   */
  acquire<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions & { raiseOnFailure?: true }): Promise<T>;
  /**
   * Runs `fn` if the limiter has room. Returns true after `fn` finished, or
   * false, without running it, when the limiter is full. What `fn` returns
   * is dropped; keep it in a variable `fn` closes over.
   *
   * @example
   * ```ts
   * if (!(await limiter.acquire(sendDigest, { raiseOnFailure: false }))) {
   *   logger.info({}, "Digest skipped: another one is being sent.");
   * }
   * ```
   */
  acquire(fn: () => unknown, options: AcquireOptions & { raiseOnFailure: false }): Promise<boolean>;
  /** Runs `fn` under the limit; the return shape follows `raiseOnFailure`, as the other signatures describe. */
  acquire<T>(fn: () => T | PromiseLike<T>, options: AcquireOptions): Promise<T | boolean>;
  async acquire<T>(fn: () => T | PromiseLike<T>, options: AcquireOptions = {}): Promise<T | boolean> {
    const { raiseOnFailure = true } = options;
    if (typeof fn !== "function") {
      throw new ConfigurationError(`Invalid function ${String(fn)} passed to acquire(): pass the function to run under the limit.`);
    }

    if (!(await this.tryAcquire())) {
      if (raiseOnFailure) {
        throw new RateLimitExceededError(this.key);
      }
      return false;
    }

    let result: T;
    try {
      result = await fn();
    } catch (error) {
      await this.releaseAfterFailure(error);
      throw error;
    }

    await this.release();
    return raiseOnFailure ? result : true;
  }

  /** Counts one acquisition if there is room; returns whether it did. */
  protected abstract tryAcquire(): Promise<boolean>;

  /** Gives back what `tryAcquire` took. Limiters whose count expires on its own do nothing. */
  protected abstract release(): Promise<void>;

  /** Releases after `fn` threw; a release failure is logged, so the caller sees `fn`'s error. */
  private async releaseAfterFailure(fnError: unknown): Promise<void> {
    try {
      await this.release();
    } catch (error) {
      this.logger.error(
        { err: error, key: this.key, cause: toError(fnError).message },
        `Failed to release rate limiter '${this.key}' after its function threw; the slot stays taken until the key expires.`,
      );
    }
  }
}
