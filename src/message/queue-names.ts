/**
 * Queue names. Every canonical queue `<q>` has a delay queue `<q>.DQ`, where
 * messages wait until their `eta`, and a dead-letter queue `<q>.XQ`, shared by
 * `<q>` and `<q>.DQ`. Python Dramatiq uses the same suffixes on both brokers.
 */

import { ConfigurationError } from "../errors.js";

const queueNamePattern = /^[a-zA-Z_][a-zA-Z0-9._-]*$/;

/** Returns the queue name without one trailing `.DQ` or `.XQ`. */
export function canonicalQueueName(queueName: string): string {
  if (queueName.endsWith(".DQ") || queueName.endsWith(".XQ")) {
    return queueName.slice(0, -3);
  }

  return queueName;
}

/** Returns the name of the delay queue of `queueName`. */
export function delayQueueName(queueName: string): string {
  return `${canonicalQueueName(queueName)}.DQ`;
}

/** Returns the name of the dead-letter queue of `queueName`. */
export function deadLetterQueueName(queueName: string): string {
  return `${canonicalQueueName(queueName)}.XQ`;
}

/** Reports whether `queueName` names a delay queue. */
export function isDelayQueueName(queueName: string): boolean {
  return queueName.endsWith(".DQ");
}

/**
 * Throws a ConfigurationError unless `queueName` is a valid canonical queue
 * name: the pattern Python Dramatiq enforces, minus the `.DQ`/`.XQ`
 * suffixes, which would be taken for a companion queue of another name.
 */
export function validateQueueName(queueName: string): void {
  if (typeof queueName !== "string" || !queueNamePattern.test(queueName)) {
    throw new ConfigurationError(
      `Invalid queue name ${JSON.stringify(queueName)}: a queue name must start with a letter or underscore ` +
        "and contain only letters, digits, '.', '_' and '-'.",
    );
  }

  if (queueName.endsWith(".DQ") || queueName.endsWith(".XQ")) {
    throw new ConfigurationError(
      `Invalid queue name ${JSON.stringify(queueName)}: the suffixes .DQ and .XQ are reserved for delay and dead-letter queues; ` +
        `use ${JSON.stringify(canonicalQueueName(queueName))} instead.`,
    );
  }
}
