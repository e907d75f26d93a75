/**
 * Forwarding from a lazy broker to its live broker. A lazy broker is an
 * instance of its engine class, so `instanceof` checks and types work, but
 * the engine state built by that constructor is never used. Members that
 * belong to the engine class rather than to the Broker base are replaced by
 * forwarders, which throw before `initApp()` and call the live broker after.
 */

import { Broker, type BrokerOptions } from "../broker.js";
import type { Consumer } from "../consumer.js";

/** Callbacks through which forwarders reach the live broker and report errors. */
export interface ForwardingTarget {
  /**
   * Returns the live broker of `self`, or undefined while the lazy
   * constructor is still running (the engine constructor may call its own
   * methods then). Throws BrokerNotInitialisedError before `initApp()`.
   */
  live(self: object, member: string): Broker | undefined;
  /** Builds the error for a member that the live broker's class does not have. */
  missingMember(self: object, live: Broker, member: string): Error;
}

/** Property keys of `Broker.prototype`: the base API, which lazy brokers implement themselves. */
export const brokerApiKeys: ReadonlySet<PropertyKey> = new Set(Reflect.ownKeys(Broker.prototype));

/**
 * Returns the own members of the prototypes from `start` up to, not
 * including, `Broker.prototype`, without the Broker API and `constructor`.
 * The definition nearest to `start` wins.
 */
export function engineMembers(start: object): Map<PropertyKey, PropertyDescriptor> {
  const members = new Map<PropertyKey, PropertyDescriptor>();
  let prototype: object | null = start;

  while (prototype !== null && prototype !== Broker.prototype && prototype !== Object.prototype) {
    for (const key of Reflect.ownKeys(prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(prototype, key);
      if (key !== "constructor" && !brokerApiKeys.has(key) && !members.has(key) && descriptor !== undefined) {
        members.set(key, descriptor);
      }
    }
    prototype = Object.getPrototypeOf(prototype) as object | null;
  }

  return members;
}

/** Defines a forwarder on `holder` for each member, falling back to the member's own code during construction. */
export function defineForwarders(holder: object, members: ReadonlyMap<PropertyKey, PropertyDescriptor>, target: ForwardingTarget): void {
  for (const [key, descriptor] of members) {
    if (typeof descriptor.value === "function") {
      Object.defineProperty(holder, key, {
        value: methodForwarder(key, descriptor.value as (...args: unknown[]) => unknown, target),
        writable: true,
        configurable: true,
        enumerable: false,
      });
    } else {
      Object.defineProperty(holder, key, accessorForwarder(key, descriptor, target));
    }
  }
}

function methodForwarder(key: PropertyKey, original: ((...args: unknown[]) => unknown) | undefined, target: ForwardingTarget) {
  const label = `${String(key)}()`;
  return function forward(this: object, ...args: unknown[]): unknown {
    const live = target.live(this, label);
    if (live === undefined) {
      if (original === undefined) {
        throw new TypeError(`${label} was called on a lazy broker under construction.`);
      }
      return Reflect.apply(original, this, args);
    }

    const member: unknown = Reflect.get(live, key);
    if (typeof member !== "function") {
      throw target.missingMember(this, live, label);
    }
    return Reflect.apply(member, live, args) as unknown;
  };
}

function accessorForwarder(key: PropertyKey, original: PropertyDescriptor | undefined, target: ForwardingTarget): PropertyDescriptor {
  const label = String(key);
  return {
    configurable: true,
    enumerable: false,
    get(this: object): unknown {
      const live = target.live(this, label);
      if (live === undefined) {
        return original?.get !== undefined ? original.get.call(this) : original?.value;
      }
      if (!(key in live)) {
        throw target.missingMember(this, live, label);
      }
      return Reflect.get(live, key);
    },
    set(this: object, value: unknown): void {
      const live = target.live(this, label);
      if (live === undefined) {
        if (original?.set === undefined) {
          throw new TypeError(`${label} cannot be set on a lazy broker under construction.`);
        }
        original.set.call(this, value);
        return;
      }
      if (!(key in live)) {
        throw target.missingMember(this, live, label);
      }
      Reflect.set(live, key, value);
    },
  };
}

/** A minimal concrete broker, built once to learn which own fields the Broker base creates. */
class ProbeBroker extends Broker {
  protected override async publish(): Promise<void> {}
  override async connect(): Promise<void> {}
  override consume(): Consumer {
    throw new Error("ProbeBroker never consumes.");
  }
  override async queueDepth(): Promise<number> {
    return 0;
  }
  override async flush(): Promise<void> {}
  override async flushAll(): Promise<void> {}
  override async join(): Promise<void> {}
  override async close(): Promise<void> {}
}

let baseKeys: ReadonlySet<PropertyKey> | undefined;

/** Own property keys that every Broker instance gets from the base constructor (`actors`, `middleware`…). */
export function baseInstanceKeys(): ReadonlySet<PropertyKey> {
  if (baseKeys === undefined) {
    const options: BrokerOptions = { middleware: [] };
    baseKeys = new Set(Reflect.ownKeys(new ProbeBroker(options)));
  }
  return baseKeys;
}

/**
 * Replaces the own fields that the engine constructor created on `self`
 * (e.g. StubBroker's `deadLetters`) by forwarders, so they read the live
 * broker's fields rather than the unused ones of the lazy instance.
 */
export function forwardEngineFields(self: object, target: ForwardingTarget): void {
  const keep = baseInstanceKeys();
  for (const key of Reflect.ownKeys(self)) {
    if (!keep.has(key) && Reflect.deleteProperty(self, key)) {
      Object.defineProperty(self, key, accessorForwarder(key, undefined, target));
    }
  }
}

/** Adds forwarders on `self` for the own fields of `live` that `self` lacks (a class switch brings new ones). */
export function forwardLiveFields(self: object, live: Broker, target: ForwardingTarget): void {
  const keep = baseInstanceKeys();
  for (const key of Reflect.ownKeys(live)) {
    if (!keep.has(key) && !Object.hasOwn(self, key)) {
      Object.defineProperty(self, key, accessorForwarder(key, undefined, target));
    }
  }
}

const facades = new WeakMap<object, WeakMap<object, object>>();

/**
 * Returns the prototype a lazy broker takes when its live broker is of
 * another class: it inherits from the live class's prototype (so
 * `instanceof StubBroker` is true after a switch to StubBroker), forwards the
 * live class's own members, and carries every member of the lazy class
 * chain `lazyChain` (most derived first), which take precedence.
 */
export function facadePrototype(lazyChain: readonly object[], liveClassPrototype: object, target: ForwardingTarget): object {
  const first = lazyChain[0];
  if (first === undefined) {
    throw new TypeError("facadePrototype() needs at least one lazy prototype.");
  }

  let byLiveClass = facades.get(first);
  if (byLiveClass === undefined) {
    byLiveClass = new WeakMap();
    facades.set(first, byLiveClass);
  }
  const cached = byLiveClass.get(liveClassPrototype);
  if (cached !== undefined) {
    return cached;
  }

  const facade = Object.create(liveClassPrototype) as object;
  defineForwarders(facade, engineMembers(liveClassPrototype), target);
  for (const prototype of [...lazyChain].reverse()) {
    for (const key of Reflect.ownKeys(prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(prototype, key);
      if (descriptor !== undefined) {
        Object.defineProperty(facade, key, descriptor);
      }
    }
  }

  byLiveClass.set(liveClassPrototype, facade);
  return facade;
}
