/**
 * The stored form of a result, shared with Python Dramatiq: the return value
 * encoded with the message JSON rules, or, for a failed message, the failure
 * envelope `{"__t":"dramatiq.results.Result","exn":{"type":…,"msg":…}}`.
 */

import { DramatiqError } from "../errors.js";
import { decodeJson, encodeJson } from "../message/encoding.js";

/** Marker that distinguishes a stored failure from a stored return value. */
export const FAILURE_TAG = "dramatiq.results.Result";

/** A failure as stored: the class name and the message of the error. */
export interface FailureDescription {
  /** Error class name, in Python's spelling for melodramatiq's own errors (`ActorNotFound`). */
  readonly type: string;
  /** Error message (Python's `str(exception)`). */
  readonly msg: string;
}

/** A decoded stored value: a return value, or a failure. */
export type StoredOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly failure: FailureDescription };

/**
 * Python Dramatiq's names for melodramatiq errors that can end a message,
 * so a Python caller reads `ActorNotFound`, not `ActorNotFoundError`. Other
 * errors keep their own name.
 */
const pythonErrorNames: Readonly<Record<string, string>> = {
  ActorNotFoundError: "ActorNotFound",
  QueueNotFoundError: "QueueNotFound",
  QueueJoinTimeoutError: "QueueJoinTimeout",
  TimeLimitExceededError: "TimeLimitExceeded",
  RateLimitExceededError: "RateLimitExceeded",
  ShutdownError: "Shutdown",
  BrokerConnectionError: "ConnectionError",
  ConnectionFailedError: "ConnectionFailed",
  ConnectionClosedError: "ConnectionClosed",
};

/** Encodes a return value for storage; `undefined` is stored as `null`, like Python's `None`. */
export function encodeResultValue(value: unknown): string {
  return encodeJson(value === undefined ? null : value);
}

/** Encodes a failure envelope, with its keys in the order Python writes them. */
export function encodeFailure(failure: FailureDescription): string {
  return encodeJson({ __t: FAILURE_TAG, exn: { type: failure.type, msg: failure.msg } });
}

/**
 * Describes an error for a failure envelope. The type is the error's `name`,
 * or its class name when `name` was left at the default `"Error"`.
 */
export function describeError(error: Error): FailureDescription {
  let type = typeof error.name === "string" && error.name !== "" ? error.name : "Error";
  if (type === "Error" && error.constructor.name !== "") {
    type = error.constructor.name;
  }

  if (error instanceof DramatiqError) {
    type = pythonErrorNames[type] ?? type;
  }

  return { type, msg: error.message };
}

/**
 * Decodes a stored value. Throws JsonSyntaxError for text that is not JSON,
 * which happens when the writer used another encoder (Python's pickle encoder).
 */
export function decodeStoredValue(text: string): StoredOutcome {
  const value = decodeJson(text);
  if (!isRecord(value) || value["__t"] !== FAILURE_TAG) {
    return { ok: true, value };
  }

  // Python treats any object with this tag as a failure, even a return value
  // that happens to contain it, so this reader does too.
  const exn = isRecord(value["exn"]) ? value["exn"] : {};
  const type = exn["type"];
  const msg = exn["msg"];
  return {
    ok: false,
    failure: {
      type: typeof type === "string" ? type : "Exception",
      msg: typeof msg === "string" ? msg : "",
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
