import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import type { GetMessage } from "amqplib";

import { actor } from "../../../src/actor.js";
import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { Worker, type WorkerOptions } from "../../../src/worker/worker.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { loadVector } from "../../helpers/vectors.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor, watchProcessErrors, type RawClient } from "./support.js";

interface FailureScenario {
  broker: string;
  case: string;
  pushed: { body: string };
  actor_ran_with: unknown[];
  queues_after_worker_stopped: { name: string; messages: number }[];
  xq_message: { method: { routing_key: string }; properties: { delivery_mode: number; headers: Record<string, unknown> | null }; body: string } | null;
}

const failureModes = loadVector("failure-modes") as { scenarios: FailureScenario[] };
const rabbitmqScenarios = failureModes.scenarios.filter((scenario) => scenario.broker === "rabbitmq");

let raw: RawClient;
let logs: LogCapture;
const created: string[] = [];

before(async () => {
  raw = await openRawClient();
  logs = captureLogs();
});

after(async () => {
  for (const queueName of created) {
    await raw.deleteQueueSet(queueName);
  }
  await raw.close();
  logs.restore();
});

function newQueue(label: string): string {
  const queueName = uniqueQueueName(label);
  created.push(queueName);
  return queueName;
}

/** Creates a broker and a worker on it; `stop()` stops both. */
function createFixture(workerOptions: WorkerOptions = {}): { broker: RabbitmqBroker; worker: Worker; stop(): Promise<void> } {
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000, ...workerOptions });
  return {
    broker,
    worker,
    async stop() {
      await worker.stop();
      await broker.close();
    },
  };
}

/** Publishes a raw body to `queueName` with delivery mode 2, as another producer would. */
function pushRaw(queueName: string, body: string | Buffer): void {
  raw.channel.sendToQueue(queueName, typeof body === "string" ? Buffer.from(body, "utf8") : body, { persistent: true });
}

/** Builds a valid message body for `actorName` on `queueName`, with `options`. */
function validBody(queueName: string, actorName: string, args: unknown[], options: Record<string, unknown> = {}): string {
  return JSON.stringify({
    queue_name: queueName,
    actor_name: actorName,
    args,
    kwargs: {},
    options,
    message_id: randomUUID(),
    message_timestamp: Date.now(),
  });
}

/** Checks the dead-letter headers RabbitMQ adds against the vector's (the `time` member varies). */
function assertDeathHeaders(message: GetMessage, expected: Record<string, unknown>, from: string, queueName: string): void {
  const headers = message.properties.headers ?? {};
  const [death] = headers["x-death"] ?? [];
  const [expectedDeath] = expected["x-death"] as Record<string, unknown>[];
  assert.ok(death !== undefined, "one x-death entry");
  assert.ok(expectedDeath !== undefined, "the vector has an x-death entry");

  assert.equal(death.count, expectedDeath["count"]);
  assert.equal(death.reason, expectedDeath["reason"]);
  assert.equal(death.queue, String(expectedDeath["queue"]).replace(from, queueName));
  assert.equal(death.exchange, expectedDeath["exchange"]);
  assert.deepEqual(death["routing-keys"], (expectedDeath["routing-keys"] as string[]).map((key) => key.replace(from, queueName)));
  assert.equal(headers["x-first-death-exchange"], expected["x-first-death-exchange"]);
  assert.equal(headers["x-first-death-queue"], String(expected["x-first-death-queue"]).replace(from, queueName));
  assert.equal(headers["x-first-death-reason"], expected["x-first-death-reason"]);
}

test("worker runs sent message and acks it", async () => {
  const queueName = newQueue("run");
  const fixture = createFixture();
  const calls: number[][] = [];
  const add = actor(
    (a: number, b: number) => {
      calls.push([a, b]);
    },
    { broker: fixture.broker, actorName: "add", queueName },
  );

  try {
    await fixture.worker.start();
    await add.send(1, 2);
    await waitFor("the actor call", () => calls.length === 1);
  } finally {
    await fixture.stop();
  }

  assert.deepEqual(calls, [[1, 2]]);
  assert.equal(await raw.count(queueName), 0, "acked: closing the channel returned nothing");
});

test("delayed send runs after its delay", async () => {
  const queueName = newQueue("delay");
  const fixture = createFixture();
  const calls: { at: number }[] = [];
  const later = actor(
    () => {
      calls.push({ at: Date.now() });
    },
    { broker: fixture.broker, actorName: "later", queueName },
  );

  try {
    await fixture.worker.start();
    const sent = await later.sendWithOptions({ args: [], delay: 300 });
    assert.equal(sent.queueName, `${queueName}.DQ`);

    await waitFor("the delayed call", () => calls.length === 1);
    assert.ok((calls[0]?.at ?? 0) >= (sent.options["eta"] as number), "ran no earlier than its eta");
  } finally {
    await fixture.stop();
  }

  assert.equal(await raw.count(queueName), 0);
  assert.equal(await raw.count(`${queueName}.DQ`), 0);
});

test("failed message lands in XQ", async () => {
  const queueName = newQueue("fail");
  const fixture = createFixture();
  const fails = actor(
    () => {
      throw new Error("boom");
    },
    { broker: fixture.broker, actorName: "fails", queueName, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const sent = await fails.send();
    await waitFor("a dead letter", async () => (await raw.count(`${queueName}.XQ`)) === 1);

    const [dead] = await raw.drain(`${queueName}.XQ`);
    assert.ok(dead !== undefined);
    const body = JSON.parse(dead.content.toString("utf8")) as { message_id: string; options: Record<string, unknown> };
    assert.equal(body.message_id, sent.messageId);
    const vector = loadVector("rabbitmq-queues") as { dead_lettered_message: { "read_back_from_spec_default.XQ": { properties: { headers: Record<string, unknown> } } } };
    assertDeathHeaders(dead, vector.dead_lettered_message["read_back_from_spec_default.XQ"].properties.headers, "spec_default", queueName);
  } finally {
    await fixture.stop();
  }

  assert.equal(await raw.count(queueName), 0);
});

test("failure modes match vector", async () => {
  const queueName = newQueue("fail_modes");
  const fixture = createFixture({ concurrency: 1 });
  const errors = watchProcessErrors();
  const calls: unknown[] = [];
  actor(
    (value: unknown) => {
      calls.push(value);
    },
    { broker: fixture.broker, actorName: "known", queueName },
  );

  const scenarios = rabbitmqScenarios.filter((scenario) => scenario.case === "undecodable_body" || scenario.case === "unknown_actor");
  assert.equal(scenarios.length, 2);

  try {
    await fixture.worker.start();
    for (const scenario of scenarios) {
      pushRaw(queueName, scenario.pushed.body.replaceAll("spec_fail", queueName));
    }
    pushRaw(queueName, validBody(queueName, "known", ["after"]));

    await waitFor("two dead letters", async () => (await raw.count(`${queueName}.XQ`)) === 2);
    await waitFor("the valid message", () => calls.length === 1);
    assert.deepEqual(calls, ["after"], "the worker kept running; no bad message reached an actor");

    const dead = await raw.drain(`${queueName}.XQ`);
    for (const [index, scenario] of scenarios.entries()) {
      const message = dead[index];
      const expected = scenario.xq_message;
      assert.ok(message !== undefined, `${scenario.case}: a dead letter`);
      assert.ok(expected !== null, `${scenario.case}: the vector has a dead letter`);
      assert.equal(message.content.toString("utf8"), expected.body.replaceAll("spec_fail", queueName), scenario.case);
      assert.equal(message.fields.routingKey, expected.method.routing_key.replace("spec_fail", queueName));
      assert.equal(message.properties.deliveryMode, expected.properties.delivery_mode);
      assertDeathHeaders(message, expected.properties.headers ?? {}, "spec_fail", queueName);
    }

    assert.equal(logs.find("error", `Failed to decode a message on '${queueName}'`).length, 1);
    assert.equal(logs.find("error", "actor 'nobody' is not declared").length, 1);
  } finally {
    await fixture.stop();
    errors.stop();
  }

  assert.equal(await raw.count(queueName), 0);
  assert.equal(await raw.count(`${queueName}.DQ`), 0);
  assert.deepEqual(errors.errors, []);
});

test("queue name mismatch runs and acks", async () => {
  const queueName = newQueue("mismatch");
  const fixture = createFixture({ concurrency: 1 });
  const calls: unknown[] = [];
  actor(
    (value: unknown) => {
      calls.push(value);
    },
    { broker: fixture.broker, actorName: "known", queueName },
  );
  const scenario = rabbitmqScenarios.find((entry) => entry.case === "queue_name_mismatch");
  assert.ok(scenario !== undefined);

  try {
    await fixture.worker.start();
    pushRaw(queueName, scenario.pushed.body.replaceAll("spec_fail", queueName));
    await waitFor("the actor call", () => calls.length === 1);
  } finally {
    await fixture.stop();
  }

  // Python's worker thread dies here and leaves the message unacked; this worker acks it.
  assert.deepEqual(calls, scenario.actor_ran_with);
  assert.equal(await raw.count(queueName), 0);
});

test("bad bodies never stop the consumer", async () => {
  const queueName = newQueue("fc04");
  const fixture = createFixture({ concurrency: 1 });
  const errors = watchProcessErrors();
  const calls: string[] = [];
  actor(
    (label: string) => {
      calls.push(label);
    },
    { broker: fixture.broker, actorName: "echo", queueName },
  );

  const bodies: Buffer[] = [
    Buffer.from([0x80, 0xff, 0x00]),
    Buffer.from("not json"),
    Buffer.from(JSON.stringify({ queue_name: queueName, args: [], kwargs: {}, options: {} })),
    Buffer.from(validBody(queueName, "echo", ["d"], { eta: null })),
    Buffer.from(validBody(queueName, "echo", ["e"], { eta: "tomorrow" })),
    Buffer.from(validBody(queueName, "echo", ["f"], { eta: Date.now() - 3_600_000 })),
    Buffer.from(validBody(queueName, "echo", ["g"])),
  ];

  try {
    await fixture.worker.start();
    for (const body of bodies) {
      pushRaw(queueName, body);
    }

    await waitFor("four actor calls", () => calls.length === 4);
    await waitFor("three dead letters", async () => (await raw.count(`${queueName}.XQ`)) === 3);

    assert.deepEqual([...calls].sort(), ["d", "e", "f", "g"]);
    assert.equal(logs.find("error", `Failed to decode a message on '${queueName}'`).length, 3);
    assert.equal(logs.find("warn", "has an invalid eta \"tomorrow\"").length, 1);

    const dead = await raw.drain(`${queueName}.XQ`);
    assert.deepEqual(
      dead.map((message) => message.content),
      bodies.slice(0, 3),
      "a, b and c are dead-lettered once each",
    );

    pushRaw(queueName, validBody(queueName, "echo", ["after"]));
    await waitFor("the call after the bad bodies", () => calls.length === 5);
  } finally {
    await fixture.stop();
    errors.stop();
  }

  assert.equal(await raw.count(queueName), 0);
  assert.equal(await raw.count(`${queueName}.DQ`), 0);
  assert.equal(await raw.count(`${queueName}.XQ`), 0);
  assert.deepEqual(errors.errors, []);
});

test("graceful stop returns prefetched messages", async () => {
  const queueName = newQueue("stop");
  const fixture = createFixture({ concurrency: 1, queuePrefetch: 4 });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const started: number[] = [];
  const slow = actor(
    async (index: number) => {
      started.push(index);
      await gate;
    },
    { broker: fixture.broker, actorName: "slow", queueName },
  );

  let stopping: Promise<void> | undefined;
  try {
    await fixture.worker.start();
    for (let index = 0; index < 4; index++) {
      await slow.send(index);
    }
    await waitFor("the first task to start", () => started.length === 1);
    await waitFor("all four delivered", async () => (await raw.count(queueName)) === 0);

    stopping = fixture.worker.stop();
    // The channel stays open while the task runs, so these three came back by requeue, not by closing.
    await waitFor("three requeued messages", async () => (await raw.count(queueName)) === 3);

    release();
    await stopping;
  } finally {
    release();
    await stopping;
    await fixture.stop();
  }

  assert.deepEqual(started, [0]);
  assert.equal(await raw.count(queueName), 3, "the finished task was acked, the others wait");
  const messages = await raw.drain(queueName);
  assert.deepEqual(
    messages.map((message) => (JSON.parse(message.content.toString("utf8")) as { args: number[] }).args),
    [[1], [2], [3]],
    "requeued in their original order",
  );
});

test("worker start fails fast on closed port", async () => {
  const broker = new RabbitmqBroker({ url: "amqp://127.0.0.1:1", connectionAttempts: 1 });
  const worker = new Worker(broker, { queues: ["mq_never_started"] });
  try {
    await assert.rejects(worker.start(), { name: "ConnectionFailedError" });
  } finally {
    await broker.close();
  }
});
