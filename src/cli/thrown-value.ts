/**
 * Log text for a thrown value that is not an Error (`throw "boom"`). Log
 * lines print an Error's stack, but a string, number or plain object has
 * none, so the value itself goes into the message.
 */

import { inspect } from "node:util";

/** Maximum length of a thrown value in a log message, in characters. */
const MAX_THROWN_VALUE_LENGTH = 500;

/**
 * Returns ": it threw <value>, which is not an Error" for a value that is
 * not an Error, to append to a failure message, and "" for an Error.
 */
export function describeNonError(thrown: unknown): string {
  if (thrown instanceof Error) {
    return "";
  }

  let text = inspect(thrown, { depth: 2, breakLength: Number.POSITIVE_INFINITY, maxStringLength: MAX_THROWN_VALUE_LENGTH });
  if (text.length > MAX_THROWN_VALUE_LENGTH) {
    text = `${text.slice(0, MAX_THROWN_VALUE_LENGTH)}...`;
  }
  return `: it threw ${text}, which is not an Error`;
}
