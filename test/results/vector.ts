/** Typed access to the results vector that Python Dramatiq 2.2 produced. */

import type { MessageDict } from "../../src/message/message.js";
import { loadVector } from "../helpers/vectors.js";

export interface ResultCase {
  case: string;
  message: MessageDict;
  key_source_string: string;
  key: string;
  md5_of_source: string;
  key_with_use_namespace_prefix_keys: string;
  redis_type: string;
  redis_list: string[];
  pttl_ms_when_read: number;
  get_result:
    | { ok: true; value: unknown }
    | { ok: false; exception_type: string; str: string; orig_exc_type: string; orig_exc_msg: string };
}

export interface ResultsVector {
  results: ResultCase[];
  blocking_get: { value: unknown; list_before: string[]; list_after: string[] };
  missing_result: { message: MessageDict; key: string };
}

export const resultsVector = loadVector("results.json") as ResultsVector;

/** Returns the vector case called `name`; throws when the vector has no such case. */
export function resultCase(name: string): ResultCase {
  const found = resultsVector.results.find((entry) => entry.case === name);
  if (found === undefined) {
    throw new Error(`results.json has no case ${JSON.stringify(name)}`);
  }
  return found;
}

/** Returns what Python's get_result raised for the vector case called `name`; throws for a case that succeeded. */
export function expectedFailure(name: string): { str: string; orig_exc_type: string; orig_exc_msg: string } {
  const outcome = resultCase(name).get_result;
  if (outcome.ok) {
    throw new Error(`results.json case ${JSON.stringify(name)} is a success`);
  }
  return outcome;
}

/** Returns the fields that address a result, taken from a vector message. */
export function addressOf(message: MessageDict, messageId = message.message_id): { queueName: string; actorName: string; messageId: string } {
  return { queueName: message.queue_name, actorName: message.actor_name, messageId };
}
