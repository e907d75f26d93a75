/**
 * Lazy brokers: brokers that a module can create and declare actors on at
 * import time, and that a web app configures later with `initApp(app)`.
 *
 * A lazy broker extends its engine class, so it is a genuine broker for
 * `actor()`, `Worker` and `setBroker()`. Its life has two states:
 * - declared: it records actors, queues and middleware and opens no
 *   connection; sending, consuming, connecting and flushing throw
 *   BrokerNotInitialisedError;
 * - initialised: `initApp()` has built the live engine broker of the
 *   configured class, with the same middleware objects and every actor
 *   declared on it too. I/O is delegated to the live broker, and later
 *   declarations go to both.
 * When config selects another class than the lazy broker's own, the lazy
 * broker also takes a prototype that inherits from the live class, so
 * `instanceof StubBroker` is true after a switch to StubBroker.
 */

import { actor as declareActorOn, type ActorFunction, type ActorOptions, type CallableActor, type Actor } from "../actor.js";
import { Broker, setBroker, type AddMiddlewareOptions, type BrokerOptions, type ConsumeOptions, type EnqueueOptions, type JoinOptions } from "../broker.js";
import type { Consumer } from "../consumer.js";
import { ConfigurationError } from "../errors.js";
import { getLogger, redactUrl } from "../logger.js";
import type { Message } from "../message/message.js";
import type { Middleware } from "../middleware/middleware.js";
import { AppContext } from "./app-context.js";
import { registerBrokerClass, registerLazyClass, type BrokerClassEntry, type EngineBrokerClass } from "./broker-classes.js";
import { claimPrefix, DEFAULT_CONFIG_PREFIX, readAppConfig, validatePrefix, type BrokerConfig } from "./config.js";
import { BrokerNotInitialisedError, BrokerReconfigureError } from "./errors.js";
import { defineForwarders, engineMembers, facadePrototype, forwardEngineFields, forwardLiveFields, type ForwardingTarget } from "./forwarding.js";
import { withoutMissing, type Missing } from "./missing.js";
import type { OptionTypes } from "./option-types.js";
import { differingKeys, resolveSettings } from "./settings.js";

/** Options of `broker.actor()`: those of `actor()` without `broker`. */
export type LazyActorOptions = Omit<ActorOptions, "broker">;

/** Members that lazy brokers add to their engine class. */
export interface LazyBrokerApi {
  /** Prefix of this broker's config keys. @defaultValue `"DRAMATIQ_BROKER"` */
  readonly configPrefix: string;
  /** The engine broker built by `initApp()`, or undefined before. */
  readonly liveBroker: Broker | undefined;
  /** The app of the first `initApp()` call, or undefined before. */
  readonly app: object | undefined;

  /**
   * Builds the live broker from `config` (default: the app's config, see
   * `readAppConfig`) and carries over the actors, queues and middleware
   * declared so far. Calling it again with the same config does nothing
   * (with a warning when the app differs); other config throws
   * BrokerReconfigureError naming the keys that differ.
   */
  initApp(app: object, config?: BrokerConfig): void;
  /** Declares an actor on this broker. Rejects the `broker` and `actorClass` options. */
  actor<F extends ActorFunction>(fn: F, options?: LazyActorOptions): CallableActor<F>;
  /** Makes this broker the global one (`setBroker`), so `actor(fn)` without `broker` binds to it. */
  setDefault(): this;
}

/** A lazy broker whose engine class is `B`. */
export type LazyBroker<B extends Broker = Broker> = B & LazyBrokerApi;

/** Constructor options of a lazy broker: the engine options, each of which may be `missing`, plus `configPrefix`. */
export type LazyBrokerOptions<O> = { [K in keyof O]?: Exclude<O[K], undefined> | Missing } & {
  /** Prefix of this broker's config keys, upper case and unique in the process. @defaultValue `"DRAMATIQ_BROKER"` */
  configPrefix?: string | Missing;
};

/** A lazy broker class. */
export interface LazyBrokerClass<B extends Broker, O> {
  new (options?: LazyBrokerOptions<O>): LazyBroker<B>;
  readonly prototype: LazyBroker<B>;
}

/** Options of `createBrokerClass()`. */
export interface BrokerClassSpec {
  /** Name that `<PREFIX>_CLASS` uses for the engine class. @defaultValue the class's `name` */
  name?: string;
  /** Options that config keys may set, with their types; others are rejected. @defaultValue `{}` */
  optionTypes?: OptionTypes;
}

/** Per-instance state, kept outside the instance so that forwarders and copied methods work on any prototype. */
interface LazyState {
  readonly prefix: string;
  /** Class name shown in messages, e.g. "RabbitmqBroker". */
  readonly lazyName: string;
  readonly defaultEntry: BrokerClassEntry;
  /** Options given in code, without `middleware`, `configPrefix` and `missing` values. */
  readonly codeOptions: Readonly<Record<string, unknown>>;
  /** The prototypes of the lazy class chain, most derived first, fixed at construction. */
  readonly lazyChain: readonly object[];
  /** The prototype of the engine class the lazy class extends. */
  readonly basePrototype: object;
  live: Broker | undefined;
  app: object | undefined;
  effective: ReadonlyMap<string, unknown> | undefined;
  /** Other apps already warned about, so the warning is logged once per app. */
  readonly warnedApps: WeakSet<object>;
}

const states = new WeakMap<object, LazyState>();
const logger = getLogger("melodramatiq.web.LazyBroker");

function stateOf(self: object): LazyState {
  const state = states.get(self);
  if (state === undefined) {
    throw new TypeError("This object is not a lazy broker, or its constructor has not finished.");
  }
  return state;
}

function requireLive(self: object, operation: string): Broker {
  const state = stateOf(self);
  if (state.live !== undefined) {
    return state.live;
  }

  throw new BrokerNotInitialisedError(
    `Cannot ${operation}: the lazy ${state.lazyName} with config prefix ${state.prefix} is not initialised. ` +
      "Call broker.initApp(app) first, both in the web app's startup code and in the worker's entry module.",
  );
}

const forwardingTarget: ForwardingTarget = {
  live(self, member) {
    return states.has(self) ? requireLive(self, `use ${member}`) : undefined;
  },
  missingMember(self, live, member) {
    const state = stateOf(self);
    return new ConfigurationError(
      `${member} is not available: the live broker of the lazy ${state.lazyName} with config prefix ${state.prefix} is a ` +
        `${live.constructor.name}, selected by ${state.prefix}_CLASS, which has no such member.`,
    );
  },
};

/**
 * Creates a lazy broker class for `engineClass` and registers the engine
 * class under `spec.name`, so that `<PREFIX>_CLASS` can select it.
 *
 * @example
 *   const MyBroker = createBrokerClass(MyEngineBroker, { optionTypes: { url: "string" } });
 *   export const broker = new MyBroker({ configPrefix: "MY_BROKER" });
 */
export function createBrokerClass<B extends Broker, O>(
  engineClass: new (options?: O) => B,
  spec: BrokerClassSpec = {},
): LazyBrokerClass<B, O> {
  if (typeof engineClass !== "function" || !((engineClass as { prototype?: unknown }).prototype instanceof Broker)) {
    throw new ConfigurationError("createBrokerClass() needs an engine broker class, a subclass of Broker.");
  }

  const entry = registerBrokerClass({
    name: spec.name ?? engineClass.name,
    engineClass: engineClass as unknown as EngineBrokerClass,
    optionTypes: spec.optionTypes ?? {},
  });
  return defineLazyBrokerClass<B, O>(engineClass, entry, entry.name);
}

/**
 * Defines a lazy class that extends `baseClass` and builds `defaultEntry`
 * unless config selects another class. The lazy `Broker` extends the
 * abstract engine Broker; the others extend their engine class.
 */
export function defineLazyBrokerClass<B extends Broker, O>(
  baseClass: abstract new (options: never) => Broker,
  defaultEntry: BrokerClassEntry,
  name: string,
): LazyBrokerClass<B, O> {
  // The lazy class implements every abstract member, so constructing through
  // the abstract engine Broker is sound.
  const Base = baseClass as unknown as new (options: BrokerOptions) => Broker;

  class LazyBrokerImpl extends Base {
    /** A lazy broker stays an instance of its lazy class after a class switch changed its prototype. */
    static override [Symbol.hasInstance](value: unknown): boolean {
      const state = typeof value === "object" && value !== null ? states.get(value) : undefined;
      if (state === undefined) {
        return Function.prototype[Symbol.hasInstance].call(this, value);
      }

      const lazyPrototype = (this as { prototype: object }).prototype;
      return state.lazyChain.includes(lazyPrototype);
    }

    constructor(options: Readonly<Record<string, unknown>> = {}) {
      const { configPrefix = DEFAULT_CONFIG_PREFIX, middleware, ...codeOptions } = withoutMissing(options);
      const prefix = validatePrefix(configPrefix);
      if (middleware !== undefined && !Array.isArray(middleware)) {
        throw new ConfigurationError(`Invalid middleware option of type ${typeof middleware}: it must be an array of Middleware instances.`);
      }

      // Only middleware reaches the engine constructor: the other options
      // belong to the live broker, and may be dropped or overridden by config.
      super(middleware === undefined ? {} : { middleware: middleware as Middleware[] });

      const state: LazyState = {
        prefix,
        lazyName: name,
        defaultEntry,
        codeOptions,
        lazyChain: lazyPrototypeChain(this, LazyBrokerImpl.prototype),
        basePrototype: baseClass.prototype as object,
        live: undefined,
        app: undefined,
        effective: undefined,
        warnedApps: new WeakSet(),
      };
      forwardEngineFields(this, forwardingTarget);
      states.set(this, state);
      claimPrefix(prefix);

      // First, so that the app context also covers other middleware's aroundActor.
      this.middleware.unshift(new AppContext(() => state.app));
    }

    get configPrefix(): string {
      return stateOf(this).prefix;
    }

    get liveBroker(): Broker | undefined {
      return stateOf(this).live;
    }

    get app(): object | undefined {
      return stateOf(this).app;
    }

    initApp(app: object, config?: BrokerConfig): void {
      initialise(this, app, config);
    }

    actor<F extends ActorFunction>(fn: F, options: LazyActorOptions = {}): CallableActor<F> {
      if (Object.hasOwn(options, "broker")) {
        throw new ConfigurationError(
          "broker.actor(fn, options) declares the actor on that broker, so it does not take a `broker` option. " +
            "Call actor(fn, { broker }) to declare on another broker.",
        );
      }
      if (Object.hasOwn(options, "actorClass")) {
        throw new ConfigurationError(
          "The `actorClass` option is not supported: actors are the functions that actor() returns. Wrap fn to change what the actor does.",
        );
      }
      return declareActorOn(fn, { ...options, broker: this });
    }

    setDefault(): this {
      setBroker(this);
      return this;
    }

    override declareActor(actor: Actor): void {
      Broker.prototype.declareActor.call(this, actor);
      states.get(this)?.live?.declareActor(actor);
    }

    override declareQueue(queueName: string): void {
      Broker.prototype.declareQueue.call(this, queueName);
      states.get(this)?.live?.declareQueue(queueName);
    }

    override addMiddleware(middleware: Middleware, options: AddMiddlewareOptions = {}): void {
      Broker.prototype.addMiddleware.call(this, middleware, options);
      states.get(this)?.live?.addMiddleware(middleware, options);
    }

    override getDeclaredQueues(): Set<string> {
      const live = states.get(this)?.live;
      return live === undefined ? Broker.prototype.getDeclaredQueues.call(this) : live.getDeclaredQueues();
    }

    override getDeclaredDelayQueues(): Set<string> {
      const live = states.get(this)?.live;
      return live === undefined ? Broker.prototype.getDeclaredDelayQueues.call(this) : live.getDeclaredDelayQueues();
    }

    override async enqueue(message: Message, options: EnqueueOptions = {}): Promise<Message> {
      const live = requireLive(this, `send or enqueue a message for actor '${message.actorName}'`);
      return live.enqueue(message, options);
    }

    /** Unused: `enqueue()` is delegated whole to the live broker, which publishes. */
    protected override async publish(message: Message): Promise<void> {
      requireLive(this, `publish a message for actor '${message.actorName}'`);
      throw new TypeError("A lazy broker delegates enqueue() to its live broker and never publishes itself.");
    }

    override async connect(): Promise<void> {
      await requireLive(this, "connect").connect();
    }

    override consume(queueName: string, options: ConsumeOptions): Consumer {
      return requireLive(this, `consume queue '${queueName}'`).consume(queueName, options);
    }

    override async flush(queueName: string): Promise<void> {
      await requireLive(this, `flush queue '${queueName}'`).flush(queueName);
    }

    override async flushAll(): Promise<void> {
      await requireLive(this, "flush all queues").flushAll();
    }

    override async join(queueName: string, options?: JoinOptions): Promise<void> {
      await requireLive(this, `join queue '${queueName}'`).join(queueName, options);
    }

    override async queueDepth(queueName: string): Promise<number> {
      return requireLive(this, `count queue '${queueName}'`).queueDepth(queueName);
    }

    /** Closes the live broker's connections; before `initApp()` there is nothing to close. */
    override async close(): Promise<void> {
      await states.get(this)?.live?.close();
    }
  }

  Object.defineProperty(LazyBrokerImpl, "name", { value: name });
  pinBrokerApi(LazyBrokerImpl.prototype);
  defineForwarders(LazyBrokerImpl.prototype, withoutOwnKeys(engineMembers(baseClass.prototype as object), LazyBrokerImpl.prototype), forwardingTarget);
  registerLazyClass(LazyBrokerImpl, defaultEntry);

  return LazyBrokerImpl as unknown as LazyBrokerClass<B, O>;
}

/**
 * Copies the Broker base members that the lazy class does not define onto
 * its prototype, so the registry (actors, queues, hooks) keeps the base
 * behaviour even where the engine class overrides it with I/O.
 */
function pinBrokerApi(prototype: object): void {
  for (const key of Reflect.ownKeys(Broker.prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(Broker.prototype, key);
    if (key !== "constructor" && descriptor !== undefined && !Object.hasOwn(prototype, key)) {
      Object.defineProperty(prototype, key, descriptor);
    }
  }
}

function withoutOwnKeys(members: Map<PropertyKey, PropertyDescriptor>, holder: object): Map<PropertyKey, PropertyDescriptor> {
  return new Map([...members].filter(([key]) => !Object.hasOwn(holder, key)));
}

/** Returns the prototypes from the instance's own (a user subclass, maybe) down to the lazy class's. */
function lazyPrototypeChain(self: object, lazyPrototype: object): object[] {
  const chain: object[] = [];
  let prototype = Object.getPrototypeOf(self) as object | null;
  while (prototype !== null) {
    chain.push(prototype);
    if (prototype === lazyPrototype) {
      return chain;
    }
    prototype = Object.getPrototypeOf(prototype) as object | null;
  }
  return [lazyPrototype];
}

/** `initApp()`: builds the live broker, or checks that a repeated call configures it alike. */
function initialise(self: Broker, app: object, config: BrokerConfig | undefined): void {
  const state = stateOf(self);
  if ((typeof app !== "object" && typeof app !== "function") || app === null) {
    throw new ConfigurationError(`initApp() needs the web app as its first argument, not ${app === null ? "null" : typeof app}.`);
  }

  const resolved = resolveSettings({
    prefix: state.prefix,
    config: config ?? readAppConfig(app),
    defaultEntry: state.defaultEntry,
    codeOptions: state.codeOptions,
  });

  if (state.live !== undefined && state.effective !== undefined) {
    checkRepeatedInit(state, app, resolved.effective);
    return;
  }

  const { entry } = resolved;
  const live = new entry.engineClass({ ...resolved.options, middleware: [...self.middleware] });
  for (const queueName of Broker.prototype.getDeclaredQueues.call(self)) {
    live.declareQueue(queueName);
  }
  for (const actor of self.actors.values()) {
    live.declareActor(actor);
  }

  state.live = live;
  state.app = app;
  state.effective = resolved.effective;
  attachLive(self, state, live);

  for (const warning of resolved.warnings) {
    logger.warn(warning.fields, warning.message);
  }
  logger.info(
    { configPrefix: state.prefix, brokerClass: entry.name, url: describeUrl(resolved.options["url"]), actors: self.actors.size },
    `Initialised the lazy ${state.lazyName} with config prefix ${state.prefix} as ${entry.name}.`,
  );
}

/** Makes the live broker's own fields and, after a class switch, its class's members reachable on `self`. */
function attachLive(self: Broker, state: LazyState, live: Broker): void {
  forwardLiveFields(self, live, forwardingTarget);

  const liveClassPrototype = Object.getPrototypeOf(live) as object;
  if (liveClassPrototype !== state.basePrototype) {
    Object.setPrototypeOf(self, facadePrototype(state.lazyChain, liveClassPrototype, forwardingTarget));
  }
}

function checkRepeatedInit(state: LazyState, app: object, effective: ReadonlyMap<string, unknown>): void {
  const before = state.effective ?? new Map<string, unknown>();
  const changed = differingKeys(before, effective);
  if (changed.length > 0) {
    throw new BrokerReconfigureError(
      `Cannot reconfigure the lazy broker with config prefix ${state.prefix}: it is already initialised, and ` +
        `${changed.join(", ")} differ(s) from the config it was initialised with. A lazy broker is configured once per process; ` +
        "give every app the same broker config, or create another lazy broker with its own configPrefix.",
    );
  }

  if (app === state.app || state.warnedApps.has(app)) {
    return;
  }

  state.warnedApps.add(app);
  logger.warn(
    { configPrefix: state.prefix },
    `The lazy broker with config prefix ${state.prefix} was initialised again, with a second app whose broker config is identical. ` +
      "The broker keeps its first app: tasks see that app through currentApp(), so the app context may be wrong for the second app.",
  );
}

function describeUrl(url: unknown): string | string[] | undefined {
  if (typeof url === "string") {
    return redactUrl(url);
  }
  if (Array.isArray(url)) {
    return url.map((item) => (typeof item === "string" ? redactUrl(item) : String(item)));
  }
  return undefined;
}
