/**
 * Errors of the results module. Python Dramatiq calls them ResultError,
 * ResultMissing, ResultTimeout and ResultFailure; here they carry the
 * `Error` suffix and a stable `code` like every melodramatiq error.
 */

import { DramatiqError, type DramatiqErrorOptions } from "../errors.js";

/** Base class of the errors thrown when reading or storing a result. */
export class ResultError extends DramatiqError {
  override readonly code: string = "MELO_ERR_RESULT";
}

/** A non-blocking read found no result: the message has not finished, stores no result, or its result expired. */
export class ResultMissingError extends ResultError {
  override readonly code: string = "MELO_ERR_RESULT_MISSING";

  constructor(
    message: string,
    /** Id of the message whose result was read. */
    readonly messageId: string,
    options?: DramatiqErrorOptions,
  ) {
    super(message, options);
  }
}

/** A blocking read ended without a result. */
export class ResultTimeoutError extends ResultError {
  override readonly code: string = "MELO_ERR_RESULT_TIMEOUT";

  constructor(
    message: string,
    /** Id of the message whose result was awaited. */
    readonly messageId: string,
    options?: DramatiqErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The message failed for good, and its stored result is the failure: the
 * error its actor threw once retries ran out, or the reason a worker gave up
 * on it (age limit, unknown actor). The message is `actor raised <type>: <msg>`,
 * the text Python Dramatiq's ResultFailure has.
 */
export class ResultFailureError extends ResultError {
  override readonly code: string = "MELO_ERR_RESULT_FAILURE";

  constructor(
    /** Class name of the original error, as stored (`ValueError`, `ActorNotFound`, `Error`…). */
    readonly origExcType: string,
    /** Message of the original error, as stored. */
    readonly origExcMsg: string,
    options?: DramatiqErrorOptions,
  ) {
    super(`actor raised ${origExcType}: ${origExcMsg}`, options);
  }
}
