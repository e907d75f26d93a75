/** Errors of the web integration. Match them with `instanceof` or by `code`. */

import { ConfigurationError, DramatiqError } from "../errors.js";

/**
 * A lazy broker was asked to send, consume, connect or flush before
 * `initApp(app)` gave it a live broker. Nothing was sent anywhere.
 */
export class BrokerNotInitialisedError extends ConfigurationError {
  override readonly code: string = "MELO_ERR_BROKER_NOT_INITIALISED";
}

/** `currentApp()` was called outside an actor run by a lazy broker's worker. */
export class NoAppContextError extends DramatiqError {
  override readonly code: string = "MELO_ERR_NO_APP_CONTEXT";
}

/**
 * `initApp()` was called again on an initialised lazy broker with config
 * that would change it. A lazy broker is configured once per process.
 */
export class BrokerReconfigureError extends ConfigurationError {
  override readonly code: string = "MELO_ERR_BROKER_RECONFIGURE";
}
