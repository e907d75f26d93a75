/**
 * Results: store what actors return (or why they failed for good) and read
 * it from producers with `message.getResult()`. This entry point exports the
 * middleware, the backend contract and the in-memory backend. The Redis
 * backend has its own entry point, `melodramatiq/results/redis`, so that
 * only apps that use it load the Redis client code.
 */

export { Results, DEFAULT_RESULT_TTL, type ResultsOptions } from "./results.js";
export {
  ResultBackend,
  DEFAULT_RESULT_NAMESPACE,
  DEFAULT_RESULT_TIMEOUT,
  type GetResultOptions,
  type ResultAddress,
  type ResultBackendOptions,
} from "./backend.js";
export { StubBackend, type StubBackendOptions } from "./backends/stub.js";
export { FAILURE_TAG, type FailureDescription } from "./envelope.js";
export { ResultError, ResultFailureError, ResultMissingError, ResultTimeoutError } from "./errors.js";
