/**
 * melodramatiq/express: the web integration for Express apps. It re-exports
 * melodramatiq/web, with `currentApp()` typed as an Express app, and adds a
 * helper that copies broker settings from environment variables into
 * `app.set()`. Express itself is only used for types.
 *
 * @example
 *   const app = express();
 *   setBrokerSettingsFromEnv(app);          // DRAMATIQ_BROKER_* variables
 *   broker.initApp(app);                    // reads app.settings
 */

import type { Express } from "express";

import { currentApp as currentWebApp, currentAppOrUndefined as currentWebAppOrUndefined } from "./app-context.js";
import { configFromEnv, DEFAULT_CONFIG_PREFIX } from "./config.js";

export * from "./index.js";

/**
 * Returns the Express app of the running task: the app its lazy broker was
 * first initialised with. Throws NoAppContextError outside a task.
 */
export function currentApp(): Express {
  return currentWebApp() as Express;
}

/** Returns the Express app of the running task, or undefined outside a task. */
export function currentAppOrUndefined(): Express | undefined {
  return currentWebAppOrUndefined() as Express | undefined;
}

/** Options of `setBrokerSettingsFromEnv()`. */
export interface BrokerSettingsFromEnvOptions {
  /** Config prefix of the lazy broker. @defaultValue `"DRAMATIQ_BROKER"` */
  prefix?: string;
  /** Environment variables to copy from. @defaultValue `process.env` */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Copies the environment variables named `<prefix>_*` into the app's
 * settings with `app.set()`, replacing settings of the same name, and
 * returns the names copied. Call it before `broker.initApp(app)`.
 */
export function setBrokerSettingsFromEnv(app: Express, options: BrokerSettingsFromEnvOptions = {}): string[] {
  const settings = configFromEnv(options.env ?? process.env, options.prefix ?? DEFAULT_CONFIG_PREFIX);
  for (const [name, value] of Object.entries(settings)) {
    app.set(name, value);
  }
  return Object.keys(settings);
}
