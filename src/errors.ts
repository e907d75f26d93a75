/**
 * The error hierarchy. Class names follow Python Dramatiq's so that users of
 * both libraries recognise them, with an `Error` suffix where TypeScript
 * convention expects one. Every class sets `name` and a stable `code`, and is
 * meant to be matched with `instanceof`, never by its message text.
 */

/** Options accepted by every melodramatiq error. */
export interface DramatiqErrorOptions {
  cause?: unknown;
}

/** Base class of every error that melodramatiq throws on purpose. */
export class DramatiqError extends Error {
  /** Stable identifier, safe to match on, e.g. `MELO_ERR_ACTOR_NOT_FOUND`. */
  readonly code: string = "MELO_ERR";

  constructor(message: string, options?: DramatiqErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Base class of errors raised by brokers. */
export class BrokerError extends DramatiqError {
  override readonly code: string = "MELO_ERR_BROKER";
}

/** The broker server could not be reached or dropped the connection. */
export class BrokerConnectionError extends BrokerError {
  override readonly code: string = "MELO_ERR_BROKER_CONNECTION";
}

/** Connecting to the broker server failed. The CLI exits with code 3 on this at start-up. */
export class ConnectionFailedError extends BrokerConnectionError {
  override readonly code: string = "MELO_ERR_CONNECTION_FAILED";
}

/** The connection closed while an operation was in flight. */
export class ConnectionClosedError extends BrokerConnectionError {
  override readonly code: string = "MELO_ERR_CONNECTION_CLOSED";
}

/** A message body could not be decoded. `data` contains the raw bytes or text. */
export class DecodeError extends DramatiqError {
  override readonly code: string = "MELO_ERR_DECODE";

  constructor(
    message: string,
    readonly data: Uint8Array | string,
    options?: DramatiqErrorOptions,
  ) {
    super(message, options);
  }
}

/** A message addresses an actor that is not declared on this broker. */
export class ActorNotFoundError extends DramatiqError {
  override readonly code: string = "MELO_ERR_ACTOR_NOT_FOUND";
}

/** A queue name is not declared on this broker. */
export class QueueNotFoundError extends BrokerError {
  override readonly code: string = "MELO_ERR_QUEUE_NOT_FOUND";
}

/** `StubBroker.join()` ran out of time while messages were still pending. */
export class QueueJoinTimeoutError extends DramatiqError {
  override readonly code: string = "MELO_ERR_QUEUE_JOIN_TIMEOUT";
}

/** Invalid arguments or configuration, named in the message together with the fix. */
export class ConfigurationError extends DramatiqError {
  override readonly code: string = "MELO_ERR_CONFIGURATION";
}

/**
 * Thrown by an actor to ask for a retry. With `delay` (ms) the retry is
 * scheduled exactly that far ahead instead of using the backoff.
 */
export class Retry extends DramatiqError {
  override readonly code: string = "MELO_RETRY";
  readonly delay: number | undefined;

  constructor(message = "retry requested", options?: DramatiqErrorOptions & { delay?: number }) {
    super(message, options);
    this.delay = options?.delay;
  }
}

/**
 * Thrown by middleware in `beforeProcessMessage` to skip a message without
 * running its actor, or by the actor itself to end its message early. Either
 * way the message is acked (unless a middleware failed it), the
 * `afterSkipMessage` hooks run instead of `afterProcessMessage`, and Retries
 * does not retry it.
 */
export class SkipMessage extends DramatiqError {
  override readonly code: string = "MELO_SKIP_MESSAGE";
}

/** A task ran past its time limit. */
export class TimeLimitExceededError extends DramatiqError {
  override readonly code: string = "MELO_ERR_TIME_LIMIT_EXCEEDED";
}

/**
 * The worker is stopping: a task that asked for shutdown notifications
 * (`notifyShutdown`) is interrupted with this error, and its message is
 * retried like any other failure.
 */
export class ShutdownError extends DramatiqError {
  override readonly code: string = "MELO_ERR_SHUTDOWN";
}

/**
 * Returns `value` if it is an Error, else an Error that describes it and keeps
 * the original as `cause`. Actors may throw anything; the worker needs an Error.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) {
    return value;
  }

  let description: string;
  try {
    description = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    description = Object.prototype.toString.call(value);
  }

  return new Error(`non-Error value thrown: ${description}`, { cause: value });
}
