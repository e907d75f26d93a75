/** The middleware stack a broker gets when none is given. */

import type { Middleware } from "./middleware.js";
import { Retries } from "./retries.js";

/**
 * Returns a fresh default middleware stack. Python Dramatiq's default order
 * is AgeLimit, TimeLimit, ShutdownNotifications, Callbacks, Pipelines,
 * Retries; this version ships Retries, and the others join it in that order.
 */
export function defaultMiddleware(): Middleware[] {
  return [new Retries()];
}
