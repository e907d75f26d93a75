/**
 * The lazy broker classes: RabbitmqBroker, RedisBroker and StubBroker build
 * their engine class unless config selects another; Broker builds the class
 * that config selects, RabbitmqBroker by default.
 */

import { Broker as EngineBroker } from "../broker.js";
import { RabbitmqBroker as EngineRabbitmqBroker, type RabbitmqBrokerOptions } from "../brokers/rabbitmq/index.js";
import { RedisBroker as EngineRedisBroker, type RedisBrokerOptions } from "../brokers/redis/index.js";
import { StubBroker as EngineStubBroker, type StubBrokerOptions } from "../brokers/stub/index.js";
import { rabbitmqEntry, redisEntry, stubEntry } from "./broker-classes.js";
import { defineLazyBrokerClass, type LazyBroker, type LazyBrokerClass } from "./lazy-broker.js";

/** A lazy RabbitMQ broker. Config keys: `<PREFIX>_URL`, `<PREFIX>_CONFIRM_DELIVERY`, `<PREFIX>_MAX_PRIORITY`… */
export const RabbitmqBroker: LazyBrokerClass<EngineRabbitmqBroker, RabbitmqBrokerOptions> = defineLazyBrokerClass(
  EngineRabbitmqBroker,
  rabbitmqEntry,
  "RabbitmqBroker",
);
export type RabbitmqBroker = LazyBroker<EngineRabbitmqBroker>;

/** A lazy Redis broker. Config keys: `<PREFIX>_URL`, `<PREFIX>_NAMESPACE`, `<PREFIX>_HEARTBEAT_TIMEOUT`… */
export const RedisBroker: LazyBrokerClass<EngineRedisBroker, RedisBrokerOptions> = defineLazyBrokerClass(EngineRedisBroker, redisEntry, "RedisBroker");
export type RedisBroker = LazyBroker<EngineRedisBroker>;

/** A lazy in-memory broker, for tests and for running an app without servers. */
export const StubBroker: LazyBrokerClass<EngineStubBroker, StubBrokerOptions> = defineLazyBrokerClass(EngineStubBroker, stubEntry, "StubBroker");
export type StubBroker = LazyBroker<EngineStubBroker>;

/** Options of the lazy Broker: those of any broker class that config may select. */
export type AnyBrokerOptions = RabbitmqBrokerOptions | RedisBrokerOptions | StubBrokerOptions;

/**
 * A lazy broker whose class comes only from config (`<PREFIX>_CLASS`),
 * RabbitmqBroker by default. Before `initApp()` it is an instance of the
 * engine Broker only; after, of the live broker's class too.
 */
export const Broker: LazyBrokerClass<EngineBroker, AnyBrokerOptions> = defineLazyBrokerClass(EngineBroker, rabbitmqEntry, "Broker");
export type Broker = LazyBroker;
