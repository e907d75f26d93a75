/**
 * CurrentMessage, for parity with Python Dramatiq, where this middleware
 * must be added before actors can read their message. Here the task
 * context is always on: `currentMessage()` works in every actor whether or
 * not this middleware is installed, so adding it changes nothing.
 */

import type { MessageProxy } from "../worker/message-proxy.js";
import { currentMessage } from "../worker/context.js";
import { Middleware } from "./middleware.js";

/**
 * A middleware with no hooks, kept so that code ported from Python
 * Dramatiq can add it and call `CurrentMessage.getCurrentMessage()`.
 */
export class CurrentMessage extends Middleware {
  /** Returns the message of the calling task, or undefined outside a task; the same as `currentMessage()`. */
  static getCurrentMessage(): MessageProxy | undefined {
    return currentMessage();
  }
}
