/**
 * The broker classes that `<PREFIX>_CLASS` can name, with the types of the
 * options each accepts from config. The built-in entries are RabbitmqBroker,
 * RedisBroker and StubBroker; `createBrokerClass()` registers more.
 */

import { Broker } from "../broker.js";
import { RabbitmqBroker } from "../brokers/rabbitmq/index.js";
import { RedisBroker } from "../brokers/redis/index.js";
import { StubBroker } from "../brokers/stub/index.js";
import { ConfigurationError } from "../errors.js";
import type { OptionTypes } from "./option-types.js";

/** A concrete engine broker class, constructed with one options object. */
export type EngineBrokerClass = new (options: Record<string, unknown>) => Broker;

/** A broker class that config can select. */
export interface BrokerClassEntry {
  /** Name used in `<PREFIX>_CLASS` and in messages. */
  readonly name: string;
  readonly engineClass: EngineBrokerClass;
  /** Options that config keys may set, by camelCase name. */
  readonly optionTypes: OptionTypes;
}

/** Config types of the engine RabbitmqBroker's options. */
export const rabbitmqOptionTypes: OptionTypes = {
  url: "urls",
  confirmDelivery: "boolean",
  maxPriority: "integer",
  deadMessageTtl: "integer",
  heartbeat: "integer",
  socketOptions: "object",
  minReconnectDelay: "integer",
  maxReconnectDelay: "integer",
  connectionAttempts: "integer",
  maxMessageSize: "integer",
};

/** Config types of the engine RedisBroker's options. */
export const redisOptionTypes: OptionTypes = {
  url: "string",
  namespace: "string",
  heartbeatTimeout: "integer",
  deadMessageTtl: "integer",
  maintenanceChance: "integer",
  redisOptions: "object",
  client: "instance",
};

const entries = new Map<string, BrokerClassEntry>();

/** Lazy classes, mapped to the entry of the class they build by default. */
const lazyClassEntries = new WeakMap<object, BrokerClassEntry>();

/**
 * Registers `engineClass` under `name`. Registering the same class again
 * replaces its option types; another class under a taken name is rejected.
 */
export function registerBrokerClass(entry: BrokerClassEntry): BrokerClassEntry {
  const existing = entries.get(entry.name);
  if (existing !== undefined && existing.engineClass !== entry.engineClass) {
    throw new ConfigurationError(
      `Another broker class is already registered as ${JSON.stringify(entry.name)}; pass a different name to createBrokerClass(cls, { name }).`,
    );
  }

  entries.set(entry.name, entry);
  return entry;
}

/** Records that the lazy class `lazyClass` builds `entry` by default, so config may name the lazy class too. */
export function registerLazyClass(lazyClass: object, entry: BrokerClassEntry): void {
  lazyClassEntries.set(lazyClass, entry);
}

/** Names of the registered broker classes, for error messages. */
export function registeredClassNames(): string[] {
  return [...entries.keys()];
}

/** Returns every registered broker class. */
export function registeredClasses(): BrokerClassEntry[] {
  return [...entries.values()];
}

/**
 * Returns the entry for a `<PREFIX>_CLASS` value: a registered name, a lazy
 * class, or any engine Broker subclass (unregistered ones accept no option
 * from config). Returns undefined for anything else.
 */
export function findBrokerClass(value: unknown): BrokerClassEntry | undefined {
  if (typeof value === "string") {
    return entries.get(value);
  }
  if (typeof value !== "function") {
    return undefined;
  }

  const lazyEntry = lazyClassEntries.get(value);
  if (lazyEntry !== undefined) {
    return lazyEntry;
  }

  for (const entry of entries.values()) {
    if (entry.engineClass === value) {
      return entry;
    }
  }

  const prototype: unknown = (value as { prototype?: unknown }).prototype;
  if (prototype instanceof Broker) {
    return { name: value.name, engineClass: value as EngineBrokerClass, optionTypes: {} };
  }
  return undefined;
}

export const rabbitmqEntry = registerBrokerClass({
  name: "RabbitmqBroker",
  engineClass: RabbitmqBroker,
  optionTypes: rabbitmqOptionTypes,
});

export const redisEntry = registerBrokerClass({
  name: "RedisBroker",
  engineClass: RedisBroker,
  optionTypes: redisOptionTypes,
});

export const stubEntry = registerBrokerClass({
  name: "StubBroker",
  engineClass: StubBroker,
  optionTypes: {},
});
