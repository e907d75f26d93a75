/**
 * Resolution of a lazy broker's settings at `initApp()`: which broker class
 * to build and with which options, from the options given in code and the
 * app's config keys under the broker's prefix.
 *
 * Precedence, lowest first: the engine class's defaults, options given in
 * code (only while config keeps the broker's default class), then config
 * keys. Every surprise (an override, an ignored key, dropped options) is
 * returned as a warning for the caller to log once.
 */

import { isDeepStrictEqual } from "node:util";

import { ConfigurationError } from "../errors.js";
import type { LogFields } from "../logger.js";
import { findBrokerClass, registeredClasses, registeredClassNames, type BrokerClassEntry } from "./broker-classes.js";
import { configEntries, configSuffixOf, nestedPrefixes, optionNameOf, type BrokerConfig } from "./config.js";
import { isMissing } from "./missing.js";
import { convertOptionValue } from "./option-types.js";

/** Inputs of `resolveSettings()`. */
export interface SettingsInput {
  readonly prefix: string;
  readonly config: BrokerConfig;
  /** The class built when config has no `<PREFIX>_CLASS`. */
  readonly defaultEntry: BrokerClassEntry;
  /** Options given in code, without `middleware` and `missing` values. */
  readonly codeOptions: Readonly<Record<string, unknown>>;
}

/** A warning to log, with its structured fields. */
export interface SettingsWarning {
  readonly message: string;
  readonly fields: LogFields;
}

/** The broker class and options from which `initApp()` builds the live broker. */
export interface ResolvedSettings {
  readonly entry: BrokerClassEntry;
  /** Options of the live broker, without `middleware`. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * The broker class (under `<PREFIX>_CLASS`) and every value config set,
   * by config key, converted. Two `initApp()` calls configure the broker
   * alike when these are equal.
   */
  readonly effective: ReadonlyMap<string, unknown>;
  readonly warnings: readonly SettingsWarning[];
}

/**
 * Resolves the broker class and options. Throws a ConfigurationError that
 * names the key for an unknown class, an invalid value or an unknown key.
 */
export function resolveSettings(input: SettingsInput): ResolvedSettings {
  const { prefix, defaultEntry, codeOptions } = input;
  const classKey = `${prefix}_CLASS`;
  const { prefixed, lowerCaseKeys } = collectPrefixedKeys(input.config, prefix);
  const warnings: SettingsWarning[] = [];

  if (lowerCaseKeys.length > 0) {
    warnings.push({
      message:
        `Config key(s) ${lowerCaseKeys.join(", ")} are ignored: a lazy broker reads only upper-case keys ` +
        `such as ${classKey}, because lower-case keys are easy to confuse with other settings.`,
      fields: { configPrefix: prefix, keys: lowerCaseKeys },
    });
  }

  const entry = selectClass(classKey, prefixed.get(classKey), defaultEntry);
  const effective = new Map<string, unknown>([[classKey, entry.engineClass]]);

  let options: Record<string, unknown> = { ...codeOptions };
  const codeNames = Object.keys(codeOptions);
  if (entry.engineClass !== defaultEntry.engineClass && codeNames.length > 0) {
    // Options written in code were chosen for the default class; a URL or
    // a priority meant for RabbitMQ must not leak into another broker.
    options = {};
    warnings.push({
      message:
        `${classKey} selects ${entry.name} instead of ${defaultEntry.name}, so the options given in code for ` +
        `${defaultEntry.name} are dropped: ${codeNames.join(", ")}. Middleware is kept. Set options of ${entry.name} with ${prefix}_* config keys.`,
      fields: { configPrefix: prefix, brokerClass: entry.name, dropped: codeNames },
    });
  }

  const notApplicable: string[] = [];
  for (const [key, value] of prefixed) {
    const suffix = key.slice(prefix.length + 1);
    if (suffix === "CLASS") {
      continue;
    }

    if (suffix === "MIDDLEWARE") {
      warnings.push({
        message: `Config key ${key} is ignored: middleware cannot come from config. Pass middleware to the broker constructor or call broker.addMiddleware().`,
        fields: { configPrefix: prefix, key },
      });
      continue;
    }

    const name = optionNameOf(suffix);
    const type = name !== undefined && Object.hasOwn(entry.optionTypes, name) ? entry.optionTypes[name] : undefined;
    if (name === undefined || type === undefined) {
      if (name !== undefined && registeredClasses().some((other) => Object.hasOwn(other.optionTypes, name))) {
        notApplicable.push(key);
        continue;
      }
      throw unknownKeyError(key, prefix, entry);
    }

    const converted = convertOptionValue(key, value, type);
    if (Object.hasOwn(options, name) && !isDeepStrictEqual(options[name], converted)) {
      warnings.push({
        message: `Config key ${key} overrides the ${name} option given in code.`,
        fields: { configPrefix: prefix, key, option: name },
      });
    }
    options[name] = converted;
    effective.set(key, converted);
  }

  if (notApplicable.length > 0) {
    warnings.push({
      message: `Config key(s) ${notApplicable.join(", ")} are ignored: ${entry.name} has no such option(s).`,
      fields: { configPrefix: prefix, brokerClass: entry.name, keys: notApplicable },
    });
  }

  return { entry, options, effective, warnings };
}

/** Returns the config keys that differ between two resolutions, class key first. */
export function differingKeys(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => !isDeepStrictEqual(before.get(key), after.get(key)));
}

/**
 * Returns the upper-case keys under `prefix` (skipping `missing` values and
 * keys of longer prefixes claimed by other lazy brokers), and the keys that
 * match only when upper-cased.
 */
function collectPrefixedKeys(config: BrokerConfig, prefix: string): { prefixed: Map<string, unknown>; lowerCaseKeys: string[] } {
  const start = `${prefix}_`;
  const others = nestedPrefixes(prefix).map((other) => `${other}_`);
  const prefixed = new Map<string, unknown>();
  const lowerCaseKeys: string[] = [];

  for (const [key, value] of configEntries(config)) {
    if (isMissing(value)) {
      continue;
    }

    if (key.startsWith(start)) {
      if (!others.some((other) => key.startsWith(other))) {
        prefixed.set(key, value);
      }
    } else if (key.toUpperCase().startsWith(start)) {
      lowerCaseKeys.push(key);
    }
  }

  return { prefixed, lowerCaseKeys };
}

function selectClass(classKey: string, value: unknown, defaultEntry: BrokerClassEntry): BrokerClassEntry {
  if (value === undefined) {
    return defaultEntry;
  }

  const entry = findBrokerClass(value);
  if (entry === undefined) {
    throw new ConfigurationError(
      `Invalid value ${describeClassValue(value)} for config key ${classKey}: expected one of ${registeredClassNames().join(", ")}, ` +
        "or a Broker subclass. Register other classes with createBrokerClass().",
    );
  }
  return entry;
}

function describeClassValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "function") {
    return `function ${value.name === "" ? "(anonymous)" : value.name}`;
  }
  return `of type ${value === null ? "null" : typeof value}`;
}

function unknownKeyError(key: string, prefix: string, entry: BrokerClassEntry): ConfigurationError {
  const validKeys = [`${prefix}_CLASS`, ...Object.keys(entry.optionTypes).map((name) => `${prefix}_${configSuffixOf(name)}`)];
  return new ConfigurationError(
    `Unknown config key ${key}: no broker class has this option. Valid keys for ${entry.name} are ${validKeys.join(", ")}.`,
  );
}
