/** ShutdownNotifications on the stub broker: tasks that ask for it are interrupted and retried when the worker stops. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError, ShutdownError } from "../../src/errors.js";
import type { Message } from "../../src/message/message.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { ShutdownNotifications } from "../../src/middleware/shutdown-notifications.js";
import type { TaskContext } from "../../src/worker/context.js";
import type { MessageProxy } from "../../src/worker/message-proxy.js";
import { Worker } from "../../src/worker/worker.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker, type StubFixture } from "../helpers/stub.js";
import { never, sleep, waitFor } from "./wait.js";

/** Records enqueues, acks and nacks. */
class Recorder extends Middleware {
  readonly enqueued: Message[] = [];
  readonly acked: string[] = [];
  readonly nacked: string[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }

  override afterAck(_broker: Broker, message: MessageProxy): void {
    this.acked.push(message.messageId);
  }

  override afterNack(_broker: Broker, message: MessageProxy): void {
    this.nacked.push(message.messageId);
  }
}

function shutdownWorker(recorder: Recorder, notifyShutdown?: boolean): StubFixture {
  const middleware = notifyShutdown === undefined ? new ShutdownNotifications() : new ShutdownNotifications({ notifyShutdown });
  // A long shutdown timeout: a test that waited for it would time out itself.
  return createStubWorker({ concurrency: 4, shutdownTimeout: 60_000, middleware: [middleware, new Retries(), recorder] });
}

/** Resolves when `signal` aborts, with its reason. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    signal.addEventListener("abort", () => {
      resolve(signal.reason);
    });
  });
}

test("stop interrupts notified task and retries it", async () => {
  const logs = captureLogs();
  const recorder = new Recorder();
  const fixture = shutdownWorker(recorder);
  const started: string[] = [];
  const reasons: unknown[] = [];
  const listening = actor(
    async function (this: TaskContext) {
      started.push("listening");
      const reason = await aborted(this.signal);
      reasons.push(reason);
      throw reason;
    },
    { broker: fixture.broker, actorName: "listening", notifyShutdown: true },
  );
  const patient = actor(
    async () => {
      started.push("patient");
      await sleep(300);
      started.push("patient done");
    },
    { broker: fixture.broker, actorName: "patient" },
  );

  try {
    await fixture.worker.start();
    const notifiedMessage = await listening.send();
    const patientMessage = await patient.send();
    await waitFor("both tasks running", () => started.includes("listening") && started.includes("patient"));

    await fixture.worker.stop();

    assert.equal(reasons.length, 1);
    assert.ok(reasons[0] instanceof ShutdownError, `abort reason ${String(reasons[0])}`);

    const retries = recorder.enqueued.filter((message) => message.messageId === notifiedMessage.messageId && message.queueName === "default.DQ");
    assert.equal(retries.length, 1, "a retry copy is enqueued");
    assert.equal(retries[0]?.options["retries"], 1);
    assert.deepEqual(
      recorder.acked.filter((id) => id === notifiedMessage.messageId),
      [notifiedMessage.messageId],
      "the interrupted delivery is acked once, its retry is pending",
    );

    assert.ok(started.includes("patient done"), "a task without notifications finishes");
    assert.ok(recorder.acked.includes(patientMessage.messageId));
    assert.deepEqual(recorder.nacked, []);

    const interrupted = logs.find("info", "interrupting message");
    assert.equal(interrupted.length, 1);
    assert.equal(interrupted[0]?.fields["messageId"], notifiedMessage.messageId);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("stop does not wait for notified task ignoring signal", async () => {
  const logs = captureLogs();
  const recorder = new Recorder();
  const fixture = shutdownWorker(recorder);
  let started = false;
  const stubborn = actor(
    () => {
      started = true;
      return never();
    },
    { broker: fixture.broker, actorName: "stubborn", notifyShutdown: true },
  );

  try {
    await fixture.worker.start();
    const sent = await stubborn.send();
    await waitFor("task running", () => started);

    // The shutdown timeout is 60 s; ending within the 10 s bound shows stop() did not wait for the actor.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        resolve("still waiting");
      }, 10_000);
    });
    const stopped = fixture.worker.stop().then(() => "stopped");
    assert.equal(await Promise.race([stopped, bound]), "stopped");
    clearTimeout(timer);

    assert.equal(recorder.acked.filter((id) => id === sent.messageId).length, 1);
    assert.equal(recorder.enqueued.filter((message) => message.queueName === "default.DQ").length, 1);
    assert.equal(fixture.worker.activeTasks, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("message notify_shutdown beats actor option", async () => {
  const logs = captureLogs();
  const recorder = new Recorder();
  const fixture = shutdownWorker(recorder);
  const outcomes = new Map<string, string>();
  const worker = actor(
    async function (this: TaskContext, label: string) {
      const winner = await Promise.race([aborted(this.signal).then(() => "interrupted"), sleep(1000).then(() => "finished")]);
      outcomes.set(label, winner);
    },
    { broker: fixture.broker, actorName: "labelled", notifyShutdown: true },
  );

  try {
    await fixture.worker.start();
    await worker.sendWithOptions({ args: ["message false"], notifyShutdown: false });
    await worker.sendWithOptions({ args: ["message null"], notifyShutdown: null });
    await worker.sendWithOptions({ args: ["absent"] });
    await waitFor("three tasks running", () => fixture.worker.activeTasks === 3);

    await fixture.worker.stop();

    assert.equal(outcomes.get("message false"), "finished");
    assert.equal(outcomes.get("message null"), "interrupted", "null falls through to the actor's true");
    assert.equal(outcomes.get("absent"), "interrupted");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("middleware default notifies every task", async () => {
  const logs = captureLogs();
  const recorder = new Recorder();
  const fixture = shutdownWorker(recorder, true);
  const outcomes: string[] = [];
  const plain = actor(
    async function (this: TaskContext) {
      outcomes.push(await Promise.race([aborted(this.signal).then(() => "interrupted"), sleep(1000).then(() => "finished")]));
    },
    { broker: fixture.broker, actorName: "plain" },
  );
  const optedOut = actor(
    async function (this: TaskContext) {
      outcomes.push(await Promise.race([aborted(this.signal).then(() => "opted out interrupted"), sleep(1000).then(() => "opted out finished")]));
    },
    { broker: fixture.broker, actorName: "opted_out", notifyShutdown: false },
  );

  try {
    await fixture.worker.start();
    await plain.send();
    await optedOut.send();
    await waitFor("two tasks running", () => fixture.worker.activeTasks === 2);

    await fixture.worker.stop();
    assert.deepEqual(outcomes.sort(), ["interrupted", "opted out finished"]);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("stop interrupts only its own worker's tasks", async () => {
  const logs = captureLogs();
  const broker = new StubBroker({ middleware: [new ShutdownNotifications({ notifyShutdown: true }), new Retries()] });
  const first = new Worker(broker, { queues: ["first"], concurrency: 1, shutdownTimeout: 60_000 });
  const second = new Worker(broker, { queues: ["second"], concurrency: 1, shutdownTimeout: 60_000 });
  const aborts: string[] = [];
  const release: (() => void)[] = [];
  const wait = async function (this: TaskContext, label: string): Promise<void> {
    this.signal.addEventListener("abort", () => aborts.push(label));
    await new Promise<void>((resolve) => release.push(resolve));
  };
  const onFirst = actor(wait, { broker, actorName: "on_first", queueName: "first" });
  const onSecond = actor(wait, { broker, actorName: "on_second", queueName: "second" });

  try {
    await first.start();
    await second.start();
    await onFirst.send("first");
    await onSecond.send("second");
    await waitFor("both tasks running", () => first.activeTasks === 1 && second.activeTasks === 1);

    await first.stop();
    assert.deepEqual(aborts, ["first"]);
    assert.equal(second.activeTasks, 1, "the other worker's task keeps running");
  } finally {
    for (const resolve of release) {
      resolve();
    }
    await first.stop();
    await second.stop();
    logs.restore();
  }
});

test("task starting during stop is interrupted unrun", async () => {
  const logs = captureLogs();
  const recorder = new Recorder();
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });
  let gated = false;

  /** Holds every message in beforeProcessMessage until the gate opens. */
  class Gate extends Middleware {
    override async beforeProcessMessage(): Promise<void> {
      gated = true;
      await gate;
    }
  }

  const fixture = createStubWorker({
    concurrency: 1,
    shutdownTimeout: 60_000,
    middleware: [new Gate(), new ShutdownNotifications(), new Retries(), recorder],
  });
  let calls = 0;
  const late = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "late", notifyShutdown: true },
  );

  try {
    await fixture.worker.start();
    const sent = await late.send();
    await waitFor("message held before its actor", () => gated);

    const stopping = fixture.worker.stop();
    openGate();
    await stopping;

    assert.equal(calls, 0, "the actor does not start once the worker is stopping");
    assert.equal(recorder.enqueued.filter((message) => message.messageId === sent.messageId && message.queueName === "default.DQ").length, 1);
    assert.deepEqual(recorder.acked, [sent.messageId]);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid notifyShutdown is rejected", () => {
  const broker = new StubBroker({ middleware: [new ShutdownNotifications(), new Retries()] });
  assert.throws(
    () => actor(() => undefined, { broker, actorName: "bad", notifyShutdown: "yes" as unknown as boolean }),
    (error: unknown) => error instanceof ConfigurationError && /Invalid notifyShutdown/.test(error.message),
  );
  assert.throws(() => new ShutdownNotifications({ notifyShutdown: 1 as unknown as boolean }), ConfigurationError);
});
