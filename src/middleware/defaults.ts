/** The middleware stack a broker gets when none is given. */

import { AgeLimit } from "./age-limit.js";
import { Callbacks } from "./callbacks.js";
import type { Middleware } from "./middleware.js";
import { Pipelines } from "./pipelines.js";
import { Retries } from "./retries.js";
import { ShutdownNotifications } from "./shutdown-notifications.js";
import { TimeLimit } from "./time-limit.js";

/**
 * Returns a fresh default middleware stack, in Python Dramatiq's default
 * order. The order matters: after-hooks run in reverse, so Retries records
 * `retries` and `traceback` before Callbacks builds its failure payload.
 */
export function defaultMiddleware(): Middleware[] {
  return [
    new AgeLimit(),
    new TimeLimit(),
    new ShutdownNotifications(),
    new Callbacks(),
    new Pipelines(),
    new Retries(),
  ];
}
