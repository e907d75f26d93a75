/**
 * melodramatiq: background task processing for Node.js, wire-compatible
 * with Python Dramatiq.
 *
 * Terms used throughout:
 * - actor: a function that runs in a worker when a message names it;
 * - message: one call of an actor, encoded as Dramatiq's JSON envelope;
 * - queue: where messages wait (`<q>`), with a delay queue (`<q>.DQ`) and a
 *   dead-letter queue (`<q>.XQ`) beside it;
 * - broker: the connection to the queue server (RabbitMQ, Redis, or the
 *   in-memory stub) plus the actors and middleware declared on it;
 * - middleware: hooks around enqueueing and processing (retries, results…);
 * - consumer: the broker's reader of one queue, feeding a worker;
 * - worker: runs actors for the messages its consumers deliver;
 * - lazy broker: a broker configured later from a web app (see `melodramatiq/web`).
 */

export { actor, isActor, type Actor, type ActorFunction, type ActorOptions, type CallableActor, type MiddlewareActorOptions, type SendOptions } from "./actor.js";
export {
  Broker,
  getBroker,
  getBrokerIfSet,
  setBroker,
  type AddMiddlewareOptions,
  type BrokerOptions,
  type ConsumeOptions,
  type EnqueueOptions,
  type JoinOptions,
} from "./broker.js";
export type { Consumer, DeliveryHandler } from "./consumer.js";
export {
  ActorNotFoundError,
  BrokerConnectionError,
  BrokerError,
  ConfigurationError,
  ConnectionClosedError,
  ConnectionFailedError,
  DecodeError,
  DramatiqError,
  QueueJoinTimeoutError,
  QueueNotFoundError,
  Retry,
  SkipMessage,
  TimeLimitExceededError,
  toError,
  type DramatiqErrorOptions,
} from "./errors.js";
export { ConsoleLogger, getLogger, redactUrl, setLogger, silentLogger, type ConsoleLoggerOptions, type LogFields, type Logger, type LogLevel } from "./logger.js";
export { EncodeError, PyFloat, pyFloat } from "./message/encoding.js";
export { Message, type MessageDict, type MessageInit, type MessageOptions } from "./message/message.js";
export { canonicalQueueName, deadLetterQueueName, delayQueueName, validateQueueName } from "./message/queue-names.js";
export { computeBackoff } from "./middleware/backoff.js";
export { defaultMiddleware } from "./middleware/defaults.js";
export { Middleware, type MiddlewareClass, type MiddlewareHooks, type ProcessOutcome } from "./middleware/middleware.js";
export { resolveOption } from "./middleware/options.js";
export { Retries, type RetriesOptions } from "./middleware/retries.js";
export { currentMessage, currentSignal, type TaskContext } from "./worker/context.js";
export { MessageProxy } from "./worker/message-proxy.js";
export { Worker, type WorkerOptions } from "./worker/worker.js";
export { StubBroker, type DeadLetter, type StubBrokerOptions } from "./brokers/stub/index.js";
export { ShutdownError } from "./errors.js";
export { AgeLimit, type AgeLimitOptions } from "./middleware/age-limit.js";
export { TimeLimit, DEFAULT_TIME_LIMIT, type TimeLimitOptions } from "./middleware/time-limit.js";
export { ShutdownNotifications, type ShutdownNotificationsOptions } from "./middleware/shutdown-notifications.js";
export { CurrentMessage } from "./middleware/current-message.js";
export { optionChecks, resolveCheckedOption, type OptionCheck, type OptionWarningSink, type Precedence } from "./middleware/options.js";
export { RunningTask } from "./worker/running-task.js";
export { Callbacks, type CallbackFailure } from "./middleware/callbacks.js";
export { Pipelines } from "./middleware/pipelines.js";
export { GroupCallbacks, DEFAULT_BARRIER_TTL, type GroupCallbacksOptions } from "./middleware/group-callbacks.js";
export {
  Group,
  group,
  Pipeline,
  pipeline,
  type CompositionOptions,
  type CompositionResultOptions,
  type CompositionRunOptions,
  type GroupChild,
  type GroupRunOptions,
  type GroupWaitOptions,
  type PipelineChild,
} from "./composition/index.js";
export { GenericActor, type GenericActorClass } from "./generic-actor.js";
export { RateLimitExceededError } from "./rate-limits/errors.js";
