/** Checks of the options that limiters and the barrier take, and the clock type of the time-based limiters. */

import { ConfigurationError } from "../errors.js";

/** Returns `value` if it is a whole number, 1 or more; else throws a ConfigurationError naming the option and its unit. */
export function positiveInteger(name: string, value: number, unit: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigurationError(`Invalid ${name} ${String(value)}: it must be a whole number of ${unit}, 1 or more.`);
  }
  return value;
}

/** Current UNIX time in ms. Window and bucket limiters take one so tests can move time without waiting. */
export type Clock = () => number;

/** Throws a ConfigurationError unless `backend` has the RateLimiterBackend methods. */
export function checkBackend(backend: unknown): void {
  const candidate = backend as Partial<Record<string, unknown>> | null | undefined;
  const missing = ["add", "incr", "decr", "incrAndSum", "wait", "waitNotify"].filter((method) => typeof candidate?.[method] !== "function");
  if (missing.length > 0) {
    const found = backend === null ? "null" : typeof backend;
    throw new ConfigurationError(
      `Invalid rate-limiter backend (a ${found} without ${missing.join(", ")}): pass a RateLimiterBackend such as RedisRateLimiterBackend or StubRateLimiterBackend.`,
    );
  }
}
