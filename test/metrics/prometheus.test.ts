/**
 * The Prometheus middleware on a StubBroker with a real Worker: which
 * metric each step of a message's life changes, and with which labels.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { SkipMessage } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { DURATION_BUCKETS, METRIC_NAMES, Prometheus } from "../../src/metrics/index.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";
import { metricValue, seriesLabels, waitFor } from "./support.js";

const labels = (actorName: string, queueName = "default"): Record<string, string> => ({ queue_name: queueName, actor_name: actorName });

/** Creates a stub broker and worker whose middleware is fast Retries, Prometheus, then `extra`. */
function createFixture(options: { maxRetries?: number; extra?: Middleware[] } = {}) {
  const prometheus = new Prometheus();
  const retries = new Retries({ minBackoff: 10, maxBackoff: 20, maxRetries: options.maxRetries ?? 3 });
  const fixture = createStubWorker({ middleware: [retries, prometheus, ...(options.extra ?? [])] });
  return { broker: fixture.broker, worker: fixture.worker, prometheus, stop: () => fixture.stop() };
}

test("success counts message and duration", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  const ping = actor(() => "pong", { broker, actorName: "ping" });

  try {
    await worker.start();
    await ping.send();
    await ping.send();
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("ping")), 2);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("ping")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.retries, labels("ping")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.rejects, labels("ping")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.inProgress, labels("ping")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.durations, labels("ping"), `${METRIC_NAMES.durations}_count`), 2);
  } finally {
    await stop();
    logs.restore();
  }
});

test("duration histogram uses Dramatiq buckets", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  const ping = actor(() => undefined, { broker, actorName: "ping" });

  try {
    await worker.start();
    await ping.send();
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    const snapshot = await prometheus.collectForAggregation();
    const histogram = snapshot.find((metric) => metric.name === METRIC_NAMES.durations);
    const bounds = histogram?.values.filter((value) => value.metricName === `${METRIC_NAMES.durations}_bucket`).map((value) => value.labels["le"]);
    assert.deepEqual(bounds, [...DURATION_BUCKETS, "+Inf"]);
    assert.deepEqual(DURATION_BUCKETS, [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000, 60000, 600000, 900000]);
  } finally {
    await stop();
    logs.restore();
  }
});

test("failure with retry counts error and both retry enqueues", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  let calls = 0;
  const flaky = actor(
    () => {
      calls += 1;
      if (calls === 1) {
        throw new Error("first call fails");
      }
    },
    { broker, actorName: "flaky" },
  );

  try {
    await worker.start();
    await flaky.send();
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    assert.equal(calls, 2);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("flaky")), 2);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("flaky")), 1);
    // As in Python Dramatiq: once when the retry goes to the delay queue,
    // once when the worker moves it back to its queue.
    assert.equal(await metricValue(prometheus, METRIC_NAMES.retries, labels("flaky", "default.DQ")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.retries, labels("flaky", "default")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.rejects, labels("flaky")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.delayedInProgress, labels("flaky", "default.DQ")), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

test("dead-lettered message counts reject", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture({ maxRetries: 0 });
  const broken = actor(
    () => {
      throw new Error("always fails");
    },
    { broker, actorName: "broken" },
  );

  try {
    await worker.start();
    await broken.send();
    await broker.join("default", { timeout: 5000, failFast: false });
    await worker.join();

    assert.equal(broker.deadLettersOf("default").length, 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("broken")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("broken")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.rejects, labels("broken")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.retries), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

test("in-progress gauge counts running actor", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = false;
  const slow = actor(
    async () => {
      started = true;
      await gate;
    },
    { broker, actorName: "slow" },
  );

  try {
    await worker.start();
    await slow.send();
    await waitFor(() => started, "the actor has started");

    assert.equal(await metricValue(prometheus, METRIC_NAMES.inProgress, labels("slow")), 1);

    release();
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    assert.equal(await metricValue(prometheus, METRIC_NAMES.inProgress, labels("slow")), 0);
    assert.deepEqual(await seriesLabels(prometheus, METRIC_NAMES.inProgress), [labels("slow")]);
  } finally {
    release();
    await stop();
    logs.restore();
  }
});

test("delayed message counts until released", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  const later = actor(() => undefined, { broker, actorName: "later" });

  try {
    await worker.start();
    await later.sendWithOptions({ delay: 60_000 });
    await waitFor(
      async () => (await metricValue(prometheus, METRIC_NAMES.delayedInProgress)) === 1,
      "the delayed message is held by the worker",
    );

    // Python labels held messages with the queue they came from, the delay queue.
    assert.equal(await metricValue(prometheus, METRIC_NAMES.delayedInProgress, labels("later", "default.DQ")), 1);

    await later.sendWithOptions({ delay: 10 });
    await waitFor(
      async () => (await metricValue(prometheus, METRIC_NAMES.messages, labels("later"))) === 1,
      "the short-delay message has been processed",
    );

    assert.equal(await metricValue(prometheus, METRIC_NAMES.delayedInProgress, labels("later", "default.DQ")), 1);
  } finally {
    await stop();
    logs.restore();
  }

  assert.equal(await metricValue(prometheus, METRIC_NAMES.delayedInProgress), 0, "the stopped worker requeued the held message");
});

test("delayed message dropped by flush", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  const later = actor(() => undefined, { broker, actorName: "later" });

  try {
    await worker.start();
    await later.sendWithOptions({ delay: 60_000 });
    await waitFor(
      async () => (await metricValue(prometheus, METRIC_NAMES.delayedInProgress)) === 1,
      "the delayed message is held by the worker",
    );

    await broker.flush("default");

    assert.equal(await metricValue(prometheus, METRIC_NAMES.delayedInProgress), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

class SkipAll extends Middleware {
  override beforeProcessMessage(): void {
    throw new SkipMessage("skipped by the test");
  }
}

class FailingBeforeHook extends Middleware {
  override beforeProcessMessage(): void {
    throw new Error("hook failed");
  }
}

test("skipped message counts without error", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture({ extra: [new SkipAll()] });
  let calls = 0;
  const skipped = actor(
    () => {
      calls += 1;
    },
    { broker, actorName: "skipped" },
  );

  try {
    await worker.start();
    await skipped.send();
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    assert.equal(calls, 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("skipped")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("skipped")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.inProgress, labels("skipped")), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

test("failing later hook counts error and reject", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture({ extra: [new FailingBeforeHook()] });
  const hooked = actor(() => undefined, { broker, actorName: "hooked" });

  try {
    await worker.start();
    await hooked.send();
    await broker.join("default", { timeout: 5000, failFast: false });
    await worker.join();

    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("hooked")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("hooked")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.rejects, labels("hooked")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.inProgress, labels("hooked")), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

test("unknown actor counts only reject", async () => {
  const logs = captureLogs();
  const { broker, worker, prometheus, stop } = createFixture();
  actor(() => undefined, { broker, actorName: "known" });

  try {
    await worker.start();
    await broker.enqueue(new Message({ queueName: "default", actorName: "ghost", args: [] }));
    await broker.join("default", { timeout: 5000, failFast: false });
    await worker.join();

    assert.equal(await metricValue(prometheus, METRIC_NAMES.rejects, labels("ghost")), 1);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.messages, labels("ghost")), 0);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.errors, labels("ghost")), 0);
  } finally {
    await stop();
    logs.restore();
  }
});

test("registries of two middlewares are separate", async () => {
  const logs = captureLogs();
  const first = createFixture();
  const second = createFixture();
  const one = actor(() => undefined, { broker: first.broker, actorName: "one" });
  actor(() => undefined, { broker: second.broker, actorName: "one" });

  try {
    await first.worker.start();
    await one.send();
    await first.broker.join("default", { timeout: 5000 });
    await first.worker.join();

    assert.notEqual(first.prometheus.registry, second.prometheus.registry);
    assert.equal(await metricValue(first.prometheus, METRIC_NAMES.messages), 1);
    assert.equal(await metricValue(second.prometheus, METRIC_NAMES.messages), 0);
  } finally {
    await first.stop();
    await second.stop();
    logs.restore();
  }
});

test("queue depth comes from option", async () => {
  const logs = captureLogs();
  const depths: Record<string, number | undefined> = { default: 3, "default.DQ": 1, "default.XQ": undefined, mail: 0, "mail.DQ": 0, "mail.XQ": 2 };
  const prometheus = new Prometheus({ queueDepth: (queueName) => depths[queueName] });
  const broker = new StubBroker({ middleware: [prometheus] });
  actor(() => undefined, { broker, actorName: "a" });
  actor(() => undefined, { broker, actorName: "b", queueName: "mail" });

  try {
    const metric = METRIC_NAMES.queueMessages;
    assert.equal(await metricValue(prometheus, metric, { queue_name: "default" }), 3);
    assert.equal(await metricValue(prometheus, metric, { queue_name: "default.DQ" }), 1);
    assert.equal(await metricValue(prometheus, metric, { queue_name: "mail.XQ" }), 2);
    const names = (await seriesLabels(prometheus, metric)).map((series) => series["queue_name"]);
    assert.deepEqual(names.sort(), ["default", "default.DQ", "mail", "mail.DQ", "mail.XQ"]);
  } finally {
    logs.restore();
  }
});

/** A stub broker that reports its queue depths, as brokers with a `queueDepth` method would. */
class CountingStubBroker extends StubBroker {
  override async queueDepth(queueName: string): Promise<number> {
    if (queueName.endsWith(".XQ")) {
      return this.deadLettersOf(queueName.slice(0, -3)).length;
    }
    return this.queue(queueName).bodies.length;
  }
}

test("queue depth comes from broker method", async () => {
  const prometheus = new Prometheus();
  const broker: Broker = new CountingStubBroker({ middleware: [prometheus] });
  const idle = actor(() => undefined, { broker, actorName: "idle" });

  await idle.send();
  await idle.send();
  await idle.sendWithOptions({ delay: 60_000 });

  assert.equal(await metricValue(prometheus, METRIC_NAMES.queueMessages, { queue_name: "default" }), 2);
  assert.equal(await metricValue(prometheus, METRIC_NAMES.queueMessages, { queue_name: "default.DQ" }), 1);
  assert.equal(await metricValue(prometheus, METRIC_NAMES.queueMessages, { queue_name: "default.XQ" }), 0);
});

test("queue depth defaults to broker method", async () => {
  const prometheus = new Prometheus();
  const broker = new StubBroker({ middleware: [prometheus] });
  const task = actor(() => undefined, { broker, actorName: "a" });
  await task.send();
  await task.sendWithOptions({ delay: 60_000 });

  const metric = METRIC_NAMES.queueMessages;
  assert.equal(await metricValue(prometheus, metric, { queue_name: "default" }), 1);
  assert.equal(await metricValue(prometheus, metric, { queue_name: "default.DQ" }), 1);
  assert.equal(await metricValue(prometheus, metric, { queue_name: "default.XQ" }), 0);
});

test("queue depth leaves out failed and slow queues", async () => {
  const logs = captureLogs();
  const prometheus = new Prometheus({
    queueDepthTimeout: 50,
    queueDepth: (queueName) => {
      if (queueName === "default.DQ") {
        throw new Error("depth unavailable");
      }
      if (queueName === "default.XQ") {
        // Never settles: the sample must not wait for it past the timeout.
        return new Promise<number>(() => undefined);
      }
      return queueName === "default" ? 4 : -1;
    },
  });
  const broker = new StubBroker({ middleware: [prometheus] });
  actor(() => undefined, { broker, actorName: "a" });

  try {
    const names = (await seriesLabels(prometheus, METRIC_NAMES.queueMessages)).map((series) => series["queue_name"]);
    assert.deepEqual(names, ["default"]);
    assert.equal(await metricValue(prometheus, METRIC_NAMES.queueMessages, { queue_name: "default" }), 4);

    const warnings = logs.find("warn", "Failed to sample the depth");
    assert.equal(warnings.length, 1, "the second failed sample within a minute is not logged again");
    assert.equal(warnings[0]?.fields["failedQueues"], 2);
  } finally {
    logs.restore();
  }
});
