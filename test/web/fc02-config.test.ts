/**
 * Configuration precedence and re-configuration of lazy brokers: options
 * given in code against app config, class switches, and repeated
 * `initApp()` calls. No test here opens a network connection: engine
 * brokers connect only on demand.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { RabbitmqBroker as EngineRabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { StubBroker as EngineStubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { BrokerReconfigureError, RabbitmqBroker, StubBroker } from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";
import { spyOnConnections } from "./net-spy.js";

class MarkerMiddleware extends Middleware {}

/** Returns a config prefix that no other test of this process uses. */
function uniquePrefix(): string {
  return `FC02_${randomBytes(4).toString("hex").toUpperCase()}_BROKER`;
}

test("class switch to StubBroker drops code options", () => {
  const prefix = uniquePrefix();
  const marker = new MarkerMiddleware();
  const broker = new RabbitmqBroker({ configPrefix: prefix, url: "amqp://broker.test", confirmDelivery: true, middleware: [marker] });
  const logs = captureLogs();

  try {
    broker.initApp({ config: { [`${prefix}_CLASS`]: "StubBroker" } });
  } finally {
    logs.restore();
  }

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
  assert.ok(broker instanceof EngineStubBroker, "the lazy broker should be an instance of the live class after the switch");
  assert.ok(broker instanceof RabbitmqBroker, "the lazy broker should stay an instance of its lazy class");
  assert.ok(broker.liveBroker.middleware.includes(marker), "middleware given in code must be kept");

  const warnings = logs.records.filter((record) => record.level === "warn");
  assert.equal(warnings.length, 1, `expected one warning, got: ${warnings.map((record) => record.message).join(" | ")}`);
  const [warning] = warnings;
  assert.match(warning?.message ?? "", /url/);
  assert.match(warning?.message ?? "", /confirmDelivery/);
  assert.match(warning?.message ?? "", new RegExp(`${prefix}_CLASS`));
  assert.doesNotMatch(warning?.message ?? "", /broker\.test/, "the dropped values themselves are not logged");
});

test("config URL overrides code URL with one warning", async () => {
  const broker = new RabbitmqBroker({ url: "amqp://a.test" });
  const logs = captureLogs();
  const connections = spyOnConnections();

  try {
    broker.initApp({ config: { DRAMATIQ_BROKER_URL: "amqp://b.test" } });
  } finally {
    connections.restore();
    logs.restore();
  }

  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRabbitmqBroker);
  assert.equal(live.url, "amqp://b.test");
  assert.equal(broker.url, "amqp://b.test", "engine members of the lazy broker read the live broker");
  assert.deepEqual(connections.attempts, [], "initApp must not connect");

  const warnings = logs.records.filter((record) => record.level === "warn");
  assert.equal(warnings.length, 1, `expected one warning, got: ${warnings.map((record) => record.message).join(" | ")}`);
  assert.match(warnings[0]?.message ?? "", /DRAMATIQ_BROKER_URL/);
  assert.match(warnings[0]?.message ?? "", /code/);
  await broker.close();
});

test("unknown class name names key and value", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });

  assert.throws(
    () => {
      broker.initApp({ config: { [`${prefix}_CLASS`]: "NoSuchBroker" } });
    },
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, new RegExp(`${prefix}_CLASS`));
      assert.match(error.message, /"NoSuchBroker"/);
      assert.match(error.message, /RabbitmqBroker, RedisBroker, StubBroker/);
      return true;
    },
  );
  const afterFailure: unknown = broker.liveBroker;
  assert.equal(afterFailure, undefined, "a failed initApp leaves the broker uninitialised");

  broker.initApp({ config: { [`${prefix}_CLASS`]: "StubBroker" } });
  assert.ok(broker.liveBroker instanceof EngineStubBroker, "a later initApp with valid config succeeds");
});

test("initApp twice with same app is no-op", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const app = { config: { [`${prefix}_URL`]: "amqp://first.test" } };
  broker.initApp(app);
  const live = broker.liveBroker;
  const logs = captureLogs();

  try {
    broker.initApp(app);
  } finally {
    logs.restore();
  }

  assert.equal(broker.liveBroker, live);
  assert.deepEqual(logs.records, []);
});

test("second app with identical config warns", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const first = { config: { [`${prefix}_URL`]: "amqp://first.test", [`${prefix}_MAX_PRIORITY`]: 10 } };
  const second = { config: { [`${prefix}_URL`]: "amqp://first.test", [`${prefix}_MAX_PRIORITY`]: "10" } };
  broker.initApp(first);
  const live = broker.liveBroker;
  const logs = captureLogs();

  try {
    broker.initApp(second);
    broker.initApp(second);
  } finally {
    logs.restore();
  }

  assert.equal(broker.liveBroker, live);
  assert.equal(broker.app, first, "tasks keep seeing the first app");
  const warnings = logs.records.filter((record) => record.level === "warn");
  assert.equal(warnings.length, 1, "the warning is logged once per app");
  assert.match(warnings[0]?.message ?? "", /second app/);
  assert.match(warnings[0]?.message ?? "", /currentApp\(\)/);
});

test("third app with other URL throws reconfigure", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  broker.initApp({ config: { [`${prefix}_URL`]: "amqp://first.test" } });
  const live = broker.liveBroker;

  assert.throws(
    () => {
      broker.initApp({ config: { [`${prefix}_URL`]: "amqp://third.test", [`${prefix}_CONFIRM_DELIVERY`]: "true" } });
    },
    (error: unknown) => {
      assert.ok(error instanceof BrokerReconfigureError);
      assert.ok(error instanceof ConfigurationError);
      assert.equal(error.code, "MELO_ERR_BROKER_RECONFIGURE");
      assert.match(error.message, /reconfigure/);
      assert.match(error.message, new RegExp(`${prefix}_URL`));
      assert.match(error.message, new RegExp(`${prefix}_CONFIRM_DELIVERY`));
      assert.doesNotMatch(error.message, new RegExp(`${prefix}_CLASS`), "the class did not change");
      return true;
    },
  );
  assert.equal(broker.liveBroker, live);
});

test("same config after class switch is no-op", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix, url: "amqp://code.test", confirmDelivery: true });
  const config = { [`${prefix}_CLASS`]: "StubBroker" };
  broker.initApp({ config });
  const live = broker.liveBroker;

  // Options given in code for RabbitmqBroker must not count as a difference.
  assert.doesNotThrow(() => {
    broker.initApp({ config: { ...config } });
  });
  assert.equal(broker.liveBroker, live);
});

test("reconfigure names class key when class changes", () => {
  const prefix = uniquePrefix();
  const broker = new StubBroker({ configPrefix: prefix });
  broker.initApp({ config: {} });

  assert.throws(
    () => {
      broker.initApp({ config: { [`${prefix}_CLASS`]: "RabbitmqBroker" } });
    },
    (error: unknown) => error instanceof BrokerReconfigureError && error.message.includes(`${prefix}_CLASS`),
  );
});
