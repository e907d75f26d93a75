/**
 * Exponential backoff with jitter, as Python Dramatiq computes retry delays:
 * `factor × 2^min(attempt, 32)`, scaled by a random factor in [1, 2). A value
 * above `max` is replaced by a random value in [max/2, max].
 */

/** Upper bound of every retry delay: 7 days in ms. */
export const MAX_BACKOFF_CAP = 7 * 24 * 60 * 60 * 1000;

/**
 * Returns the delay in ms before retry number `attempt + 1`, where `attempt`
 * counts the failures before the current one. Always a finite integer in
 * [0, max]; `random` is injectable for tests.
 */
export function computeBackoff(attempt: number, factor: number, max: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 32);
  const cap = Math.max(0, max);
  const base = Math.floor(factor * 2 ** exponent);
  // Adding the jitter separately keeps the result below 2 × base: a product
  // with a factor just under 2 can round up to exactly 2 × base.
  let delay = base + Math.floor(base * random());
  if (!Number.isFinite(delay) || delay > cap) {
    delay = Math.floor(cap * (0.5 + random() / 2));
  }

  return Math.max(0, delay);
}
