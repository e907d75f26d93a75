/**
 * Rate limiters and barriers: limit how often or how many at once a piece
 * of code runs across every process sharing a backend, and let a known
 * number of parties meet. This entry point exports the limiters, the
 * barrier, the backend contract and the in-memory backend. The Redis
 * backend has its own entry point, `melodramatiq/rate-limits/redis`, so
 * that only apps that use it load the Redis client code.
 */

export { RateLimiter, type AcquireOptions } from "./rate-limiter.js";
export { ConcurrentRateLimiter, type ConcurrentRateLimiterOptions } from "./concurrent.js";
export { WindowRateLimiter, type WindowRateLimiterOptions } from "./window.js";
export { BucketRateLimiter, type BucketRateLimiterOptions } from "./bucket.js";
export { Barrier, type BarrierOptions, type BarrierWaitOptions } from "./barrier.js";
export { RateLimiterBackend, EVENT_VALUE, MIN_WAIT_TIMEOUT } from "./backend.js";
export { StubRateLimiterBackend, type StoredKeyState, type StubRateLimiterBackendOptions } from "./backends/stub.js";
export { RateLimitExceededError, RateLimiterBackendError } from "./errors.js";
export type { Clock } from "./options.js";
