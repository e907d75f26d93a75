/**
 * Config values to broker options: type conversion of strings from
 * environment variables, errors that name the key, unknown and ignored
 * keys, `missing`, and where `initApp()` finds the config.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { Redis } from "ioredis";

import { RabbitmqBroker as EngineRabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker as EngineRedisBroker } from "../../src/brokers/redis/index.js";
import { StubBroker as EngineStubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError } from "../../src/errors.js";
import {
  Broker,
  configFromEnv,
  createBrokerClass,
  missing,
  RabbitmqBroker,
  readAppConfig,
  RedisBroker,
  StubBroker,
} from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";
import { spyOnConnections } from "./net-spy.js";

function uniquePrefix(): string {
  return `CONV_${randomBytes(4).toString("hex").toUpperCase()}`;
}

function liveRabbitmq(broker: RabbitmqBroker): EngineRabbitmqBroker {
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRabbitmqBroker, `expected a live RabbitmqBroker, got ${String(live?.constructor.name)}`);
  return live;
}

function liveRedis(broker: RedisBroker): EngineRedisBroker {
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRedisBroker, `expected a live RedisBroker, got ${String(live?.constructor.name)}`);
  return live;
}

/** Asserts that initApp with `value` under `key` throws a ConfigurationError naming the key, the value and the type. */
function assertInvalid(suffix: string, value: unknown, valueText: string, expected: RegExp): void {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const key = `${prefix}_${suffix}`;

  assert.throws(
    () => {
      broker.initApp({ config: { [key]: value } });
    },
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError, `${key}=${String(value)} should throw a ConfigurationError`);
      assert.match(error.message, new RegExp(`config key ${key}:`));
      assert.ok(error.message.includes(valueText), `message ${JSON.stringify(error.message)} lacks the value ${valueText}`);
      assert.match(error.message, expected);
      return true;
    },
  );
  assert.equal(broker.liveBroker, undefined);
}

test("string config values convert to option types", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  broker.initApp({
    config: {
      [`${prefix}_URL`]: "amqp://one.test;amqp://two.test",
      [`${prefix}_CONFIRM_DELIVERY`]: "TRUE",
      [`${prefix}_MAX_PRIORITY`]: "10",
      [`${prefix}_DEAD_MESSAGE_TTL`]: "60000",
      [`${prefix}_HEARTBEAT`]: "0",
      [`${prefix}_CONNECTION_ATTEMPTS`]: " 2 ",
      [`${prefix}_MIN_RECONNECT_DELAY`]: "10",
      [`${prefix}_MAX_RECONNECT_DELAY`]: "20",
      [`${prefix}_SOCKET_OPTIONS`]: '{"timeout": 1000}',
    },
  });

  const live = liveRabbitmq(broker);
  assert.deepEqual(live.urls, ["amqp://one.test", "amqp://two.test"]);
  assert.equal(live.confirmDelivery, true);
  assert.equal(live.maxPriority, 10);
  assert.equal(live.deadMessageTtl, 60000);
  assert.equal(live.connectionAttempts, 2);
  assert.equal(live.minReconnectDelay, 10);
  assert.equal(live.maxReconnectDelay, 20);
});

test("boolean config accepts true false 1 0", () => {
  const cases: [unknown, boolean][] = [
    ["true", true],
    ["false", false],
    ["1", true],
    ["0", false],
    ["False", false],
    [true, true],
    [false, false],
  ];

  for (const [value, expected] of cases) {
    const prefix = uniquePrefix();
    const broker = new RabbitmqBroker({ configPrefix: prefix });
    broker.initApp({ config: { [`${prefix}_CONFIRM_DELIVERY`]: value } });
    assert.equal(liveRabbitmq(broker).confirmDelivery, expected, `value ${JSON.stringify(value)}`);
  }
});

test("invalid boolean names key value and type", () => {
  assertInvalid("CONFIRM_DELIVERY", "yes", '"yes"', /expected a boolean/);
  assertInvalid("CONFIRM_DELIVERY", 1, "1", /expected a boolean/);
});

test("invalid integer names key value and type", () => {
  assertInvalid("MAX_PRIORITY", "ten", '"ten"', /expected a whole number/);
  assertInvalid("MAX_PRIORITY", "2.5", '"2.5"', /expected a whole number/);
  assertInvalid("DEAD_MESSAGE_TTL", "-1", '"-1"', /expected a whole number, 0 or more/);
  assertInvalid("CONNECTION_ATTEMPTS", "", '""', /expected a whole number/);
  assertInvalid("HEARTBEAT", 1.5, "1.5", /expected a whole number/);
});

test("invalid URL and object values name the key", () => {
  assertInvalid("URL", 5672, "5672", /expected a URL string/);
  assertInvalid("URL", [], "of type array", /expected a URL string/);
  assertInvalid("SOCKET_OPTIONS", "{not json", "not a JSON object", /expected an object/);
  assertInvalid("SOCKET_OPTIONS", "[1]", "not a JSON object", /expected an object/);
});

test("invalid URL value is shown without password", () => {
  const prefix = uniquePrefix();
  const broker = new StubBroker({ configPrefix: prefix });
  broker.initApp({ config: {} });

  const other = new RabbitmqBroker({ configPrefix: `${prefix}_OTHER` });
  assert.throws(
    () => {
      other.initApp({ config: { [`${prefix}_OTHER_CONNECTION_ATTEMPTS`]: "amqp://user:secret@host.test" } });
    },
    (error: unknown) => error instanceof ConfigurationError && !error.message.includes("secret"),
  );
});

test("engine validation errors reach initApp", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  assert.throws(() => {
    broker.initApp({ config: { [`${prefix}_MAX_PRIORITY`]: "300" } });
  }, /maxPriority=300/);
  assert.equal(broker.liveBroker, undefined);
});

test("unknown config key names key and valid keys", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  assert.throws(
    () => {
      broker.initApp({ config: { [`${prefix}_CONFIRM`]: "true" } });
    },
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, new RegExp(`Unknown config key ${prefix}_CONFIRM:`));
      assert.match(error.message, new RegExp(`${prefix}_CLASS, ${prefix}_URL, ${prefix}_CONFIRM_DELIVERY, ${prefix}_MAX_PRIORITY`));
      return true;
    },
  );
});

test("key of another broker class is ignored with warning", () => {
  const prefix = uniquePrefix();
  const broker = new StubBroker({ configPrefix: prefix });
  const logs = captureLogs();

  try {
    broker.initApp({ config: { [`${prefix}_URL`]: "amqp://ignored.test", [`${prefix}_NAMESPACE`]: "jobs" } });
  } finally {
    logs.restore();
  }

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
  const warnings = logs.find("warn", "are ignored");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]?.message ?? "", new RegExp(`${prefix}_URL, ${prefix}_NAMESPACE`));
});

test("middleware config key is ignored with warning", () => {
  const prefix = uniquePrefix();
  const broker = new StubBroker({ configPrefix: prefix });
  const middlewareBefore = [...broker.middleware];
  const logs = captureLogs();

  try {
    broker.initApp({ config: { [`${prefix}_MIDDLEWARE`]: ["Retries"] } });
  } finally {
    logs.restore();
  }

  assert.equal(logs.find("warn", `${prefix}_MIDDLEWARE`).length, 1);
  assert.deepEqual(broker.liveBroker?.middleware, middlewareBefore);
});

test("missing values count as not given", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix, url: missing, maxPriority: 7, confirmDelivery: missing });

  broker.initApp({ config: { [`${prefix}_URL`]: "amqp://config.test", [`${prefix}_MAX_PRIORITY`]: missing, [`${prefix}_CLASS`]: missing } });

  const live = liveRabbitmq(broker);
  assert.equal(live.url, "amqp://config.test");
  assert.equal(live.maxPriority, 7);
  assert.equal(live.confirmDelivery, false);
});

test("missing configPrefix means the default prefix", () => {
  // No other test of this file uses the default prefix.
  const broker = new StubBroker({ configPrefix: missing });

  assert.equal(broker.configPrefix, "DRAMATIQ_BROKER");
});

test("class value may be a class", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  broker.initApp({ config: { [`${prefix}_CLASS`]: EngineStubBroker } });

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
});

test("class value may be a lazy class", () => {
  const prefix = uniquePrefix();
  const broker = new Broker({ configPrefix: prefix });

  broker.initApp({ config: { [`${prefix}_CLASS`]: StubBroker } });

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
});

test("RedisBroker string config converts to options", async () => {
  const prefix = uniquePrefix();
  const broker = new RedisBroker({ configPrefix: prefix, namespace: "from-code" });
  const connections = spyOnConnections();

  try {
    broker.initApp({
      config: {
        [`${prefix}_URL`]: "redis://127.0.0.1:6379/3",
        [`${prefix}_NAMESPACE`]: "jobs",
        [`${prefix}_HEARTBEAT_TIMEOUT`]: "30000",
        [`${prefix}_DEAD_MESSAGE_TTL`]: " 60000 ",
        [`${prefix}_MAINTENANCE_CHANCE`]: "0",
        [`${prefix}_REDIS_OPTIONS`]: '{"connectTimeout": 500}',
      },
    });
  } finally {
    connections.restore();
  }

  const live = liveRedis(broker);
  assert.equal(live.namespace, "jobs");
  assert.equal(live.heartbeatTimeout, 30000);
  assert.equal(live.deadMessageTtl, 60000);
  assert.equal(live.maintenanceChance, 0);
  assert.equal(live.displayUrl, "redis://127.0.0.1:6379/3");
  assert.equal(live.clientOptions?.db, 3);
  assert.equal(live.clientOptions?.connectTimeout, 500);
  assert.equal(broker.namespace, "jobs", "engine fields forward to the live broker");
  assert.deepEqual(connections.attempts, [], "initApp() opens no connection");

  await broker.close();
});

test("Broker class RedisBroker from config", () => {
  const prefix = uniquePrefix();
  const broker = new Broker({ configPrefix: prefix });

  broker.initApp({ config: { [`${prefix}_CLASS`]: "RedisBroker", [`${prefix}_NAMESPACE`]: "selected" } });

  assert.ok(broker.liveBroker instanceof EngineRedisBroker);
  assert.ok(broker instanceof EngineRedisBroker, "the lazy Broker takes the live class's prototype");
  assert.equal(broker.namespace, "selected");
});

test("invalid RedisBroker values name key or option", () => {
  const cases: [string, string, RegExp][] = [
    ["HEARTBEAT_TIMEOUT", "1.5", /config key CONV_\w+_HEARTBEAT_TIMEOUT: expected a whole number/],
    ["DEAD_MESSAGE_TTL", "-1", /config key CONV_\w+_DEAD_MESSAGE_TTL: expected a whole number, 0 or more/],
    ["MAINTENANCE_CHANCE", "often", /config key CONV_\w+_MAINTENANCE_CHANCE: expected a whole number/],
    ["REDIS_OPTIONS", "{not json", /config key CONV_\w+_REDIS_OPTIONS: expected an object/],
    ["HEARTBEAT_TIMEOUT", "0", /heartbeatTimeout=0/],
    ["MAINTENANCE_CHANCE", "2000000", /maintenanceChance=2000000/],
    ["NAMESPACE", "", /Invalid Redis namespace ""/],
    ["URL", "http://127.0.0.1:6379", /the scheme must be redis:\/\/, rediss:\/\/ or unix:\/\//],
  ];

  for (const [suffix, value, expected] of cases) {
    const prefix = uniquePrefix();
    const broker = new RedisBroker({ configPrefix: prefix });
    assert.throws(
      () => {
        broker.initApp({ config: { [`${prefix}_${suffix}`]: value } });
      },
      (error: unknown) => {
        assert.ok(error instanceof ConfigurationError, `${suffix}=${JSON.stringify(value)} should throw a ConfigurationError`);
        assert.match(error.message, expected, `${suffix}=${JSON.stringify(value)}`);
        return true;
      },
    );
    assert.equal(broker.liveBroker, undefined, `${suffix}=${JSON.stringify(value)} leaves the broker uninitialised`);
  }
});

test("client option takes an ioredis client", async () => {
  const client = new Redis("redis://127.0.0.1:6379/5", { lazyConnect: true });
  const prefix = uniquePrefix();
  const broker = new RedisBroker({ configPrefix: prefix });
  const conflicting = new RedisBroker({ configPrefix: `${prefix}_BOTH` });

  try {
    broker.initApp({ config: { [`${prefix}_CLIENT`]: client } });
    assert.equal(liveRedis(broker).displayUrl, "redis://127.0.0.1:6379/5");
    assert.equal(liveRedis(broker).clientOptions, undefined);

    assert.throws(() => {
      conflicting.initApp({ config: { [`${prefix}_BOTH_CLIENT`]: client, [`${prefix}_BOTH_URL`]: "redis://127.0.0.1:6379/0" } });
    }, /either `client` or `url`\/`redisOptions`, not both/);
    assert.equal(conflicting.liveBroker, undefined);

    await broker.close();
    assert.equal(client.status, "wait", "the broker neither connected nor closed the client it was given");
  } finally {
    client.disconnect();
  }
});

test("lazy RedisBroker works as StubBroker in tests", () => {
  const prefix = uniquePrefix();
  const broker = new RedisBroker({ configPrefix: prefix, url: "redis://127.0.0.1:6379/0" });

  broker.initApp({ config: { [`${prefix}_CLASS`]: "StubBroker" } });

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
  assert.ok(broker instanceof RedisBroker);
});

test("configFromEnv copies prefixed variables", () => {
  const env = {
    DRAMATIQ_BROKER_URL: "amqp://env.test",
    DRAMATIQ_BROKER_CONFIRM_DELIVERY: "1",
    DRAMATIQ_BROKERX: "no separator",
    dramatiq_broker_url: "lower case",
    JOBS_BROKER_URL: "other prefix",
    UNSET: undefined,
  };

  assert.deepEqual(configFromEnv(env), { DRAMATIQ_BROKER_URL: "amqp://env.test", DRAMATIQ_BROKER_CONFIRM_DELIVERY: "1" });
  assert.deepEqual(configFromEnv(env, "JOBS_BROKER"), { JOBS_BROKER_URL: "other prefix" });
  assert.throws(() => configFromEnv(env, "jobs"), /must be upper case/);
});

test("environment config initialises a broker", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const env = { [`${prefix}_URL`]: "amqp://env.test", [`${prefix}_CONFIRM_DELIVERY`]: "1", PATH: "/usr/bin" };

  broker.initApp({}, { ...configFromEnv(env, prefix) });

  assert.equal(liveRabbitmq(broker).url, "amqp://env.test");
  assert.equal(liveRabbitmq(broker).confirmDelivery, true);
});

test("readAppConfig finds settings config or Map", () => {
  const settings = { A: 1 };
  const config = new Map([["B", 2]]);

  assert.equal(readAppConfig({ settings, config: { C: 3 } }), settings);
  assert.equal(readAppConfig({ config }), config);
  assert.throws(() => readAppConfig({}), /initApp\(app, config\)/);
});

test("Map config initialises a broker", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  broker.initApp({ config: new Map<string, unknown>([[`${prefix}_URL`, "amqp://map.test"]]) });

  assert.equal(liveRabbitmq(broker).url, "amqp://map.test");
});

test("explicit config wins over app config", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  broker.initApp({ config: { [`${prefix}_URL`]: "amqp://app.test" } }, { [`${prefix}_URL`]: "amqp://explicit.test" });

  assert.equal(liveRabbitmq(broker).url, "amqp://explicit.test");
});

test("initApp rejects non-object app", () => {
  const prefix = uniquePrefix();
  const broker = new StubBroker({ configPrefix: prefix });

  assert.throws(() => {
    broker.initApp(null as unknown as object);
  }, /initApp\(\) needs the web app/);
});

test("client option rejects strings", () => {
  const prefix = uniquePrefix();
  const broker = new RedisBroker({ configPrefix: prefix });

  assert.throws(
    () => {
      broker.initApp({ config: { [`${prefix}_CLIENT`]: '{"host": "127.0.0.1"}' } });
    },
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, new RegExp(`config key ${prefix}_CLIENT: expected an object, such as a client instance`));
      return true;
    },
  );
});

test("number option converts decimal strings", () => {
  class RatioBroker extends EngineStubBroker {
    readonly ratio: number;

    constructor(options: { ratio?: number } = {}) {
      super();
      this.ratio = options.ratio ?? 1;
    }
  }
  const LazyRatioBroker = createBrokerClass(RatioBroker, { optionTypes: { ratio: "number" } });
  const cases: [unknown, number][] = [
    ["0.25", 0.25],
    [".5", 0.5],
    ["2", 2],
    ["1e-3", 0.001],
    [3.5, 3.5],
  ];

  for (const [value, expected] of cases) {
    const prefix = uniquePrefix();
    const broker = new LazyRatioBroker({ configPrefix: prefix });
    broker.initApp({ config: { [`${prefix}_RATIO`]: value } });
    assert.equal(broker.ratio, expected, `value ${JSON.stringify(value)}`);
  }

  for (const value of ["-1", "abc", "1,5", "Infinity", Number.NaN]) {
    const prefix = uniquePrefix();
    const broker = new LazyRatioBroker({ configPrefix: prefix });
    assert.throws(() => {
      broker.initApp({ config: { [`${prefix}_RATIO`]: value } });
    }, new RegExp(`config key ${prefix}_RATIO: expected a number, 0 or more`), `value ${String(value)}`);
  }
});
