/**
 * Config key prefixes: lower-case keys, several lazy brokers with their own
 * prefixes, and invalid or duplicate prefixes. The default prefix can be
 * used once per process, so this file uses it in one test only.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { RabbitmqBroker as EngineRabbitmqBroker, DEFAULT_URL } from "../../src/brokers/rabbitmq/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { RabbitmqBroker, StubBroker } from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";

const sharedConfig = {
  dramatiq_broker_url: "amqp://lower.test",
  DRAMATIQ_BROKER_MAX_PRIORITY: "5",
  JOBS_BROKER_URL: "amqp://jobs.test",
  JOBS_BROKER_CONFIRM_DELIVERY: "1",
};

const defaultBroker = new RabbitmqBroker();
const jobsBroker = new RabbitmqBroker({ configPrefix: "JOBS_BROKER" });

function liveRabbitmq(broker: RabbitmqBroker): EngineRabbitmqBroker {
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRabbitmqBroker, `expected a live RabbitmqBroker, got ${String(live?.constructor.name)}`);
  return live;
}

test("lower-case config key is ignored", () => {
  const logs = captureLogs();
  try {
    defaultBroker.initApp({ config: sharedConfig });
  } finally {
    logs.restore();
  }

  const live = liveRabbitmq(defaultBroker);
  assert.equal(live.url, DEFAULT_URL);
  assert.equal(live.maxPriority, 5);
  assert.equal(logs.find("warn", "dramatiq_broker_url").length, 1, "the ignored key is named in one warning");
});

test("custom prefix keys configure only their broker", () => {
  jobsBroker.initApp({ config: sharedConfig });

  const jobs = liveRabbitmq(jobsBroker);
  assert.equal(jobs.url, "amqp://jobs.test");
  assert.equal(jobs.confirmDelivery, true);
  assert.equal(jobs.maxPriority, undefined);

  const main = liveRabbitmq(defaultBroker);
  assert.equal(main.confirmDelivery, false);
  assert.notEqual(main.url, "amqp://jobs.test");
});

test("duplicate prefix is rejected at construction", () => {
  assert.throws(
    () => new StubBroker({ configPrefix: "JOBS_BROKER" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, /"JOBS_BROKER"/);
      assert.match(error.message, /already used/);
      return true;
    },
  );
  assert.throws(() => new StubBroker(), /"DRAMATIQ_BROKER" is already used/);
});

test("lower-case prefix is rejected at construction", () => {
  for (const prefix of ["jobs_broker", "Jobs_Broker", "1JOBS", "JOBS-BROKER", "JOBS_BROKER_", ""]) {
    assert.throws(
      () => new StubBroker({ configPrefix: prefix }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigurationError, `prefix ${JSON.stringify(prefix)}`);
        assert.match(error.message, new RegExp(`Invalid configPrefix ${JSON.stringify(prefix)}`));
        assert.match(error.message, /upper case/);
        return true;
      },
    );
  }
});

test("rejected prefix stays available", () => {
  assert.throws(() => new StubBroker({ configPrefix: "late_broker" }), ConfigurationError);

  const broker = new StubBroker({ configPrefix: "LATE_BROKER" });
  assert.equal(broker.configPrefix, "LATE_BROKER");
});

test("nested prefix keys belong to the longer prefix", () => {
  const outer = new StubBroker({ configPrefix: "NEST" });
  const inner = new RabbitmqBroker({ configPrefix: "NEST_INNER" });
  const config = { NEST_CLASS: "StubBroker", NEST_INNER_URL: "amqp://inner.test" };

  assert.doesNotThrow(() => {
    outer.initApp({ config });
  }, "NEST_INNER_URL must not count as an unknown key of NEST");
  inner.initApp({ config });

  assert.equal(liveRabbitmq(inner).url, "amqp://inner.test");
});
