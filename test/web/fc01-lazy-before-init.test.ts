/**
 * Actors bound before the broker exists, and a broker used before
 * `initApp()`. The steps share one lazy broker, created by importing a task
 * module, and run in order: each test continues from the state the previous
 * one left.
 */

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";

import { actor, getBrokerIfSet } from "../../src/index.js";
import { StubBroker as EngineStubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { Results, StubBackend } from "../../src/results/index.js";
import { Worker } from "../../src/worker/worker.js";
import { BrokerNotInitialisedError } from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";
import { spyOnConnections } from "./net-spy.js";

type TaskModule = typeof import("./fixtures/fc01-module.js");

let tasks: TaskModule | undefined;
const results = new Results({ backend: new StubBackend() });

function loaded(): TaskModule {
  assert.ok(tasks !== undefined, "the task module was not imported: run the whole file, the steps depend on each other");
  return tasks;
}

function liveStub(): EngineStubBroker {
  const live = loaded().broker.liveBroker;
  assert.ok(live instanceof EngineStubBroker, `expected a live StubBroker, got ${String(live?.constructor.name)}`);
  return live;
}

function queuedActorNames(stub: EngineStubBroker, queueName: string): string[] {
  return stub.queue(queueName).bodies.map((body) => Message.decode(body).actorName);
}

test("import opens no connection and logs nothing", async () => {
  const connections = spyOnConnections();
  const logs = captureLogs();

  try {
    tasks = await import("./fixtures/fc01-module.js");
    // Give any stray connect or timer a chance to show up.
    await sleep(300);
  } finally {
    logs.restore();
    connections.restore();
  }

  assert.deepEqual(connections.attempts, []);
  assert.deepEqual(logs.records, []);
  assert.equal(tasks.broker.liveBroker, undefined);
  assert.deepEqual([...tasks.broker.actors.keys()], ["a1", "a2"]);
});

test("send before initApp throws not-initialised", async () => {
  const { a1, broker } = loaded();
  const connections = spyOnConnections();

  try {
    const error = await a1.send(1).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof BrokerNotInitialisedError, `expected BrokerNotInitialisedError, got ${String(error)}`);
    assert.ok(error instanceof ConfigurationError);
    assert.equal(error.code, "MELO_ERR_BROKER_NOT_INITIALISED");
    assert.match(error.message, /initApp\(app\)/);
    assert.match(error.message, /DRAMATIQ_BROKER/);

    await assert.rejects(a1.sendWithOptions({ args: [2], delay: 1000 }), BrokerNotInitialisedError);
    await assert.rejects(broker.enqueue(a1.message(3)), BrokerNotInitialisedError);
    await assert.rejects(broker.connect(), BrokerNotInitialisedError);
    assert.throws(() => broker.consume("default", { prefetch: 1 }), BrokerNotInitialisedError);
    await assert.rejects(broker.flush("default"), BrokerNotInitialisedError);
    await assert.rejects(broker.join("default"), BrokerNotInitialisedError);
  } finally {
    connections.restore();
  }

  assert.deepEqual(connections.attempts, []);
  assert.equal(broker.liveBroker, undefined);
});

test("worker start before initApp rejects", async () => {
  const { broker } = loaded();
  const worker = new Worker(broker, { concurrency: 1 });

  await assert.rejects(worker.start(), BrokerNotInitialisedError);
  await worker.stop();
});

test("direct call before initApp runs the function", () => {
  const { a1, calls } = loaded();
  calls.length = 0;

  const result = a1(21);

  assert.equal(result, 42);
  assert.deepEqual(calls, [["a1", 21]]);
});

test("middleware and actor option accepted before initApp", () => {
  const { broker } = loaded();

  broker.addMiddleware(results);
  const a3 = broker.actor(function a3(): string {
    return "stored";
  }, { storeResults: true });

  assert.equal(a3.options["storeResults"], true);
  assert.equal(broker.middleware.filter((middleware) => middleware === results).length, 1);
});

test("initApp with StubBroker carries middleware over once", () => {
  const { broker } = loaded();
  const app = { config: { DRAMATIQ_BROKER_CLASS: "StubBroker" } };

  broker.initApp(app);

  const stub = liveStub();
  assert.equal(stub.middleware.filter((middleware) => middleware === results).length, 1);
  assert.equal(broker.middleware.filter((middleware) => middleware === results).length, 1);
  assert.equal(stub.getActor("a3").options["storeResults"], true);
  assert.doesNotThrow(() => {
    stub.validateActorOptions("a3", { storeResults: true });
  });
});

test("actors before and after initApp reach the stub queue", async () => {
  const { a1, a2, broker } = loaded();
  const a4 = broker.actor(function a4(): void {});
  const stub = liveStub();

  for (const name of ["a1", "a2", "a3", "a4"]) {
    assert.equal(stub.getActor(name), broker.getActor(name), `actor ${name} is not the same object on the live broker`);
  }

  await a1.send(1);
  await a2.send("two");
  await broker.getActor("a3").send();
  await a4.send();

  // The sends before initApp left nothing behind: exactly these four are queued.
  assert.deepEqual(queuedActorNames(stub, "default"), ["a1", "a2", "a3", "a4"]);
  assert.deepEqual(stub.deadLetters, []);
});

test("result of a3 is stored through live broker", async () => {
  const { broker } = loaded();
  const stub = liveStub();
  await stub.flushAll();
  const worker = new Worker(broker, { concurrency: 1, shutdownTimeout: 5000 });
  const logs = captureLogs();

  try {
    await worker.start();
    const message = await broker.getActor("a3").send();
    assert.equal(await message.getResult({ block: true, timeout: 5000 }), "stored");
    await broker.join("default", { timeout: 5000 });
    await worker.join();
  } finally {
    await worker.stop();
    logs.restore();
  }

  assert.deepEqual(logs.records.filter((record) => record.level === "error"), []);
});

test("actor without broker binds to default lazy broker", () => {
  const { broker } = loaded();

  broker.setDefault();
  const a5 = actor(function a5(): void {});

  assert.equal(getBrokerIfSet(), broker);
  assert.equal(a5.broker, broker);
  assert.equal(liveStub().getActor("a5"), a5);
});
