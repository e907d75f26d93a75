/**
 * The rate-limiter backend contract: the few atomic counter and event
 * operations that every limiter and the barrier are built from. The stub
 * backend keeps its data in memory. The Redis backend sends the same
 * commands as Python Dramatiq's, so limiters in Python and Node processes
 * share their counters.
 *
 * Keys are used exactly as given, without a namespace. Counters are stored
 * as decimal integer strings, and every TTL is in milliseconds.
 */

import { ConfigurationError } from "../errors.js";
import { RateLimiterBackendError } from "./errors.js";

/** The value that `waitNotify()` pushes and `wait()` looks for. */
export const EVENT_VALUE = "x";

/**
 * Base class of rate-limiter backends. Each operation is atomic with respect
 * to every other client of the same storage.
 */
export abstract class RateLimiterBackend {
  /**
   * Stores `value` under `key` for `ttl` ms unless the key exists.
   * Returns whether it stored the value.
   */
  abstract add(key: string, value: number, ttl: number): Promise<boolean>;

  /**
   * Adds `amount` to the counter at `key` (a missing key counts as 0) unless
   * the result would exceed `maximum`, and resets the key's TTL to `ttl` ms.
   * Returns false, writing nothing, when the result would exceed `maximum`.
   */
  abstract incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean>;

  /**
   * Subtracts `amount` from the counter at `key` (a missing key counts as 0)
   * unless the result would drop below `minimum`, and resets the key's TTL to
   * `ttl` ms. Returns false, writing nothing, when it would drop below `minimum`.
   */
  abstract decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean>;

  /**
   * Adds `amount` to the counter at `key` unless either the result or
   * `amount` plus the sum of the counters at `keys` would exceed `maximum`,
   * and resets the TTL of `key` to `ttl` ms. `keys` normally includes `key`.
   * Returns false, writing nothing, when a limit would be exceeded.
   */
  abstract incrAndSum(key: string, keys: readonly string[], amount: number, maximum: number, ttl: number): Promise<boolean>;

  /**
   * Waits for an event on the list at `key`. Returns true once the list
   * contains an event (at once if it already does), or false when `timeout`
   * ms pass first. Without a timeout it waits until an event comes. The event
   * stays in the list for other waiters.
   *
   * @throws ConfigurationError when `timeout` is under 1000 ms, the shortest
   * wait that Redis, which waits in whole seconds, can honour.
   */
  abstract wait(key: string, timeout?: number): Promise<boolean>;

  /** Pushes an event onto the list at `key`, waking every `wait()` on it, and sets the list's TTL to `ttl` ms. */
  abstract waitNotify(key: string, ttl: number): Promise<void>;

  /** Releases connections and stops waits in progress. A later operation opens them again. */
  abstract close(): Promise<void>;
}

/** Shortest timeout of `wait()`, because Redis blocks in whole seconds and 0 s would mean forever. */
export const MIN_WAIT_TIMEOUT = 1000;

/** Checks a `wait()` timeout: undefined (no limit) or a finite number of ms, at least 1000. */
export function validateWaitTimeout(timeout: number | undefined): void {
  if (timeout === undefined) {
    return;
  }

  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < MIN_WAIT_TIMEOUT) {
    throw new ConfigurationError(
      `Invalid wait timeout ${String(timeout)}: it must be a number of milliseconds, at least ${MIN_WAIT_TIMEOUT}, ` +
        "because Redis waits in whole seconds. Leave it out to wait without a limit.",
    );
  }
}

/** Checks a TTL in ms: an integer, at least 1, as Redis's PX accepts. */
export function validateTtl(name: string, ttl: number): void {
  if (!Number.isSafeInteger(ttl) || ttl < 1) {
    throw new ConfigurationError(`Invalid ${name} ${String(ttl)}: it must be a whole number of milliseconds, 1 or more.`);
  }
}

/** Checks a counter operand (a value, amount or bound): a safe integer, as limiters store only those. */
export function validateInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new ConfigurationError(`Invalid ${name} ${String(value)}: it must be a whole number between -(2^53 - 1) and 2^53 - 1.`);
  }
}

/** Checks the arguments of `incr`, `decr` and `incrAndSum`. */
export function validateCounterUpdate(amount: number, boundName: "maximum" | "minimum", bound: number, ttl: number): void {
  validateInteger("amount", amount);
  validateInteger(boundName, bound);
  validateTtl("TTL", ttl);
}

/**
 * Reads the counter stored under `key`: null (missing) is 0, and anything
 * but a decimal integer is an error, since limiters only ever store those.
 */
export function parseCounter(key: string, stored: string | null): number {
  if (stored === null) {
    return 0;
  }

  const value = /^-?\d+$/.test(stored) ? Number(stored) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new RateLimiterBackendError(
      `Invalid counter ${JSON.stringify(stored.slice(0, 100))} at key '${key}': a counter is a decimal integer, ` +
        "so other data uses this key. Give the limiter another key.",
      key,
    );
  }
  return value;
}
