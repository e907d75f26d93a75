/**
 * Sources of a lazy broker's settings: the app's config, read under a
 * prefix such as `DRAMATIQ_BROKER` (`DRAMATIQ_BROKER_URL`,
 * `DRAMATIQ_BROKER_CLASS`…), and environment variables copied into it.
 */

import { ConfigurationError } from "../errors.js";

/** Prefix of the config keys of a lazy broker created without `configPrefix`. */
export const DEFAULT_CONFIG_PREFIX = "DRAMATIQ_BROKER";

/**
 * App config as `initApp()` accepts it: a plain object or a Map from key to
 * value. Express `app.settings` objects fit, inherited settings included.
 */
export type BrokerConfig = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>;

const prefixPattern = /^[A-Z][A-Z0-9_]*$/;

/** Prefixes of every lazy broker created in this process. */
const claimedPrefixes = new Set<string>();

/**
 * Throws a ConfigurationError when `prefix` is not an upper-case config
 * prefix or another lazy broker of this process already uses it.
 */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || !prefixPattern.test(prefix) || prefix.endsWith("_")) {
    throw new ConfigurationError(
      `Invalid configPrefix ${JSON.stringify(prefix)}: it must be upper case, like "DRAMATIQ_BROKER" or "JOBS_BROKER" ` +
        "(letters, digits and underscores, starting with a letter, without a trailing underscore), because config keys are upper case.",
    );
  }

  if (claimedPrefixes.has(prefix)) {
    throw new ConfigurationError(
      `The configPrefix ${JSON.stringify(prefix)} is already used by another lazy broker in this process. ` +
        "Each lazy broker needs its own prefix, e.g. new RabbitmqBroker({ configPrefix: \"JOBS_BROKER\" }).",
    );
  }
  return prefix;
}

/** Reserves `prefix` for one lazy broker; call after `validatePrefix()`. */
export function claimPrefix(prefix: string): void {
  claimedPrefixes.add(prefix);
}

/** Prefixes longer than `prefix` that start with it, whose keys `prefix` must leave alone. */
export function nestedPrefixes(prefix: string): string[] {
  return [...claimedPrefixes].filter((other) => other.startsWith(`${prefix}_`));
}

/**
 * Returns the config that `initApp(app)` reads when no config is passed:
 * `app.settings` (Express `app.set()`), else `app.config` (a plain object or
 * a Map, as many frameworks and tests keep it). Throws a ConfigurationError
 * when the app has neither.
 */
export function readAppConfig(app: object): BrokerConfig {
  const { settings, config } = app as { settings?: unknown; config?: unknown };
  if (isConfig(settings)) {
    return settings;
  }
  if (isConfig(config)) {
    return config;
  }

  throw new ConfigurationError(
    "initApp(app) found no config on the app: it reads app.settings (Express, set with app.set(key, value)) or app.config " +
      "(an object or a Map). Pass the config explicitly instead: broker.initApp(app, config).",
  );
}

function isConfig(value: unknown): value is BrokerConfig {
  return value instanceof Map || (typeof value === "object" && value !== null && !Array.isArray(value));
}

/**
 * Returns the string entries of `config`, inherited enumerable keys
 * included because mounted Express apps inherit their parent's settings.
 */
export function configEntries(config: BrokerConfig): [string, unknown][] {
  if (config instanceof Map) {
    return [...(config as ReadonlyMap<string, unknown>).entries()].filter(([key]) => typeof key === "string");
  }

  const result: [string, unknown][] = [];
  const record = config as Readonly<Record<string, unknown>>;
  for (const key in record) {
    result.push([key, record[key]]);
  }
  return result;
}

/**
 * Returns the environment variables whose names start with `<prefix>_`, as
 * a config object for `initApp(app, config)` or `app.set()`. Values stay
 * strings; `initApp` converts them to each option's type.
 *
 * @example
 *   broker.initApp(app, { ...app.config, ...configFromEnv(process.env) });
 */
export function configFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  prefix: string = DEFAULT_CONFIG_PREFIX,
): Record<string, string> {
  if (!prefixPattern.test(prefix)) {
    throw new ConfigurationError(`Invalid prefix ${JSON.stringify(prefix)} for configFromEnv(): it must be upper case, like "DRAMATIQ_BROKER".`);
  }

  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(`${prefix}_`) && value !== undefined) {
      result[name] = value;
    }
  }
  return result;
}

/** Converts the part of a config key after the prefix (`CONFIRM_DELIVERY`) to an option name (`confirmDelivery`). */
export function optionNameOf(suffix: string): string | undefined {
  if (!/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(suffix)) {
    return undefined;
  }
  return suffix.toLowerCase().replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Converts an option name (`confirmDelivery`) to the part of its config key after the prefix (`CONFIRM_DELIVERY`). */
export function configSuffixOf(optionName: string): string {
  return optionName.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}
