/**
 * melodramatiq/web: lazy brokers for web apps, framework-neutral.
 *
 * A lazy broker is created and gets its actors at import time, without a
 * connection. The app's startup code then calls `broker.initApp(app)`.
 * It reads the broker class and options from the app's config under a
 * prefix (`DRAMATIQ_BROKER_URL`, `DRAMATIQ_BROKER_CLASS`…) and builds the
 * live broker. While a worker runs an actor, `currentApp()` returns the app.
 */

export { AppContext, currentApp, currentAppOrUndefined, type WebApp, type WebAppRegistry } from "./app-context.js";
export { Broker, RabbitmqBroker, RedisBroker, StubBroker, type AnyBrokerOptions } from "./brokers.js";
export { configFromEnv, DEFAULT_CONFIG_PREFIX, readAppConfig, type BrokerConfig } from "./config.js";
export { BrokerNotInitialisedError, BrokerReconfigureError, NoAppContextError } from "./errors.js";
export {
  createBrokerClass,
  type BrokerClassSpec,
  type LazyActorOptions,
  type LazyBroker,
  type LazyBrokerApi,
  type LazyBrokerClass,
  type LazyBrokerOptions,
} from "./lazy-broker.js";
export { isMissing, missing, type Missing } from "./missing.js";
export type { OptionType, OptionTypes } from "./option-types.js";
export type { RedisBrokerOptions } from "../brokers/redis/index.js";
