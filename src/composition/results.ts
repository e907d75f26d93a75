/**
 * Result reading shared by pipelines and groups: finding the backend and
 * spreading one timeout over several blocking reads.
 */

import type { Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import type { ResultReader } from "../message/message.js";
import { DEFAULT_RESULT_TIMEOUT } from "../results/backend.js";
import { ResultMissingError } from "../results/errors.js";
import { Results } from "../results/results.js";

/** Options of the result methods of pipelines and groups. */
export interface CompositionResultOptions {
  /** Backend to read from. @defaultValue the backend of the Results middleware on the pipeline's or group's broker */
  backend?: ResultReader;
  /** Wait for results instead of failing at once when one is not stored yet. @defaultValue `false` */
  block?: boolean;
  /**
   * Milliseconds that all the blocking reads of one call share, not each
   * read: later reads get what earlier ones left. @defaultValue `10000`
   */
  timeout?: number;
}

/** Returns `backend`, or else the backend of the Results middleware installed on the broker; `getBroker` is only called then. */
export function findResultReader(getBroker: () => Broker, backend: ResultReader | undefined): ResultReader {
  if (backend !== undefined) {
    return backend;
  }

  const results = getBroker().middleware.find((middleware) => middleware instanceof Results);
  if (results === undefined) {
    throw new ConfigurationError(
      "Reading pipeline or group results needs a result backend, but the broker has no Results middleware: " +
        "add one with broker.addMiddleware(new Results({ backend })) or pass { backend }.",
    );
  }
  return results.backend;
}

/**
 * Tracks the time left of one timeout shared by several reads. Each call
 * of `remaining()` returns the milliseconds left, never less than 0.
 */
export class SharedTimeout {
  private readonly deadline: number;

  constructor(timeout: number = DEFAULT_RESULT_TIMEOUT) {
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
      throw new ConfigurationError(`Invalid result timeout ${String(timeout)}: it must be a finite number of milliseconds, 0 or more.`);
    }
    this.deadline = Date.now() + timeout;
  }

  remaining(): number {
    return Math.max(0, this.deadline - Date.now());
  }
}

/**
 * Reports whether a non-blocking read finds a stored result. A stored
 * failure is not swallowed: the read's ResultFailureError propagates.
 */
export async function hasResult(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (error) {
    if (error instanceof ResultMissingError) {
      return false;
    }
    throw error;
  }
}
