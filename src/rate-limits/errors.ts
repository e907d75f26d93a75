/**
 * Errors of the rate-limits module. Python Dramatiq calls the first one
 * RateLimitExceeded; here it carries the `Error` suffix and a stable `code`
 * like every melodramatiq error.
 */

import { DramatiqError, type DramatiqErrorOptions } from "../errors.js";

/**
 * A rate limiter had no room left. Thrown from an actor, it fails the
 * message like any error, so the Retries middleware retries it later: this
 * is the usual way to wait for a limit to free up.
 */
export class RateLimitExceededError extends DramatiqError {
  override readonly code: string = "MELO_ERR_RATE_LIMIT_EXCEEDED";

  constructor(
    /** Key of the limiter that was full. */
    readonly key: string,
    options?: DramatiqErrorOptions,
  ) {
    // The text Python's RateLimitExceeded has, so logs and stored failures read alike.
    super(`rate limit exceeded for key '${key}'`, options);
  }
}

/**
 * A rate-limiter backend could not complete an operation for a reason other
 * than a lost connection: the key contains data of another kind, or other
 * clients changed it during every attempt of an optimistic transaction.
 * Connection failures are ConnectionFailedError instead.
 */
export class RateLimiterBackendError extends DramatiqError {
  override readonly code: string = "MELO_ERR_RATE_LIMITER_BACKEND";

  constructor(
    message: string,
    /** Key the failed operation was working on. */
    readonly key: string,
    options?: DramatiqErrorOptions,
  ) {
    super(message, options);
  }
}
