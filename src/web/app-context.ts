/**
 * The app context of a task: which web app the lazy broker that runs an
 * actor was initialised with, visible from any await depth inside the actor
 * through AsyncLocalStorage.
 */

import { AsyncLocalStorage } from "node:async_hooks";

import type { Broker } from "../broker.js";
import { Middleware } from "../middleware/middleware.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import { NoAppContextError } from "./errors.js";

/**
 * Declares the type that `currentApp()` returns, by module augmentation:
 *
 * ```ts
 * declare module "melodramatiq/web" {
 *   interface WebAppRegistry { app: MyApp }
 * }
 * ```
 *
 * `melodramatiq/express` exports a `currentApp()` typed for Express instead.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WebAppRegistry {}

/** The app type of `currentApp()`: `WebAppRegistry["app"]` when declared, else `object`. */
export type WebApp = WebAppRegistry extends { app: infer App } ? App : object;

// The store type is unknown so that currentApp() can return the augmented WebApp type.
const appStorage = new AsyncLocalStorage<unknown>();

/**
 * Middleware that runs each actor call inside its lazy broker's app
 * context. Every lazy broker installs one first in its middleware, so the
 * context also covers the `aroundActor` hooks of the middleware after it.
 */
export class AppContext extends Middleware {
  /** @param appOf returns the app the lazy broker was initialised with, or undefined before `initApp()` */
  constructor(private readonly appOf: () => object | undefined) {
    super();
  }

  override async aroundActor(_broker: Broker, _message: MessageProxy, next: () => Promise<unknown>): Promise<unknown> {
    const app = this.appOf();
    if (app === undefined) {
      return next();
    }
    return appStorage.run(app, next);
  }
}

/**
 * Returns the web app of the running task: the app that the actor's lazy
 * broker was first initialised with. Throws NoAppContextError outside an
 * actor run by a worker, e.g. in a request handler or when the actor
 * function is called directly.
 */
export function currentApp(): WebApp {
  const app = appStorage.getStore();
  if (app === undefined) {
    throw new NoAppContextError(
      "currentApp() was called outside a task: the app is known only while a worker runs an actor of a lazy broker. " +
        "Pass the app explicitly here, or use currentAppOrUndefined() where code runs both inside and outside tasks.",
    );
  }
  return app as WebApp;
}

/** Returns the web app of the running task, or undefined outside a task. */
export function currentAppOrUndefined(): WebApp | undefined {
  return appStorage.getStore() as WebApp | undefined;
}
