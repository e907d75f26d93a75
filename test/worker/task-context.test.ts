/**
 * The task context: actors get it as `this` and through `currentSignal()`,
 * RunningTask interrupts, and the types keep `send()` checked. The type
 * checks at the bottom run under `npm run typecheck`; at run time they do
 * nothing.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { SkipMessage } from "../../src/errors.js";
import type { Message } from "../../src/message/message.js";
import { AgeLimit } from "../../src/middleware/age-limit.js";
import { CurrentMessage } from "../../src/middleware/current-message.js";
import { defaultMiddleware } from "../../src/middleware/defaults.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { ShutdownNotifications } from "../../src/middleware/shutdown-notifications.js";
import { TimeLimit } from "../../src/middleware/time-limit.js";
import { currentMessage, currentSignal, type TaskContext } from "../../src/worker/context.js";
import { MessageProxy } from "../../src/worker/message-proxy.js";
import { RunningTask, type LateOutcome } from "../../src/worker/running-task.js";
import { Worker } from "../../src/worker/worker.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";

/** Builds a message for `actorName` without declaring the actor anywhere a worker would look. */
function messageFor(actorName: string): Message {
  const broker = new StubBroker({ middleware: [] });
  return actor(() => undefined, { broker, actorName }).message();
}

/** Returns a task that no worker runs, to test RunningTask on its own. */
function newTask(): RunningTask {
  const broker = new StubBroker({ middleware: [] });
  return new RunningTask(new MessageProxy(messageFor("task"), "default"), new Worker(broker));
}

test("actor this is the task context", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const seen: { id: string; sum: number; subject: unknown; aborted: boolean; same: boolean }[] = [];
  const add = actor(
    function (this: TaskContext, a: number, b: number, options?: { subject?: string }) {
      seen.push({
        id: this.message.messageId,
        sum: a + b,
        subject: options?.subject,
        aborted: this.signal.aborted,
        same: this.signal === currentSignal() && this.message === currentMessage(),
      });
    },
    { broker: fixture.broker, actorName: "add" },
  );

  try {
    await fixture.worker.start();
    const plain = await add.send(1, 2);
    const withKwargs = await add.sendWithOptions({ args: [3, 4], kwargs: { subject: "hi" } });
    await fixture.broker.join("default", { timeout: 5000 });

    const byId = new Map(seen.map((entry) => [entry.id, entry]));
    assert.deepEqual(byId.get(plain.messageId), { id: plain.messageId, sum: 3, subject: undefined, aborted: false, same: true });
    assert.deepEqual(byId.get(withKwargs.messageId), { id: withKwargs.messageId, sum: 7, subject: "hi", aborted: false, same: true });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("signal stays unaborted after normal end", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  let signal: AbortSignal | undefined;
  const keep = actor(
    function (this: TaskContext) {
      signal = this.signal;
    },
    { broker: fixture.broker, actorName: "keep" },
  );

  try {
    await fixture.worker.start();
    await keep.send();
    await fixture.broker.join("default", { timeout: 5000 });
    assert.equal(signal?.aborted, false);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("running task interrupts once", () => {
  const task = newTask();
  const first = new Error("first");

  assert.equal(task.isRunning, true);
  assert.equal(task.interrupt(first), true);
  assert.equal(task.interrupt(new Error("second")), false);
  assert.equal(task.interruption, first);
  assert.equal(task.isRunning, false);
});

test("running task signal created after interrupt is aborted", () => {
  const task = newTask();
  const reason = new Error("limit");
  task.interrupt(reason);

  assert.equal(task.signal.aborted, true);
  assert.equal(task.signal.reason, reason);
});

test("running task signal aborts on interrupt", () => {
  const task = newTask();
  const signal = task.signal;
  const reasons: unknown[] = [];
  signal.addEventListener("abort", () => reasons.push(signal.reason));
  const reason = new Error("limit");

  task.interrupt(reason);
  assert.deepEqual(reasons, [reason]);
  assert.equal(task.signal, signal, "the signal is created once");
});

test("running task outcome rejects on interrupt", async () => {
  const task = newTask();
  const late: LateOutcome[] = [];
  let finish: (value: string) => void = () => undefined;
  const work = new Promise<string>((resolve) => {
    finish = resolve;
  });
  const outcome = task.outcome(work, (entry) => late.push(entry));
  const reason = new Error("limit");

  task.interrupt(reason);
  await assert.rejects(outcome, (error: unknown) => error === reason);

  finish("late value");
  await work;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(late, [{ fulfilled: true, value: "late value" }]);
});

test("running task outcome after interrupt rejects at once", async () => {
  const task = newTask();
  const reason = new Error("stopping");
  task.interrupt(reason);

  const late: LateOutcome[] = [];
  const failure = new Error("actor failed later");
  const outcome = task.outcome(Promise.reject(failure), (entry) => late.push(entry));
  await assert.rejects(outcome, (error: unknown) => error === reason);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(late, [{ fulfilled: false, error: failure }]);
});

test("running task ignores interrupt after settling", async () => {
  const task = newTask();
  const outcome = task.outcome(Promise.resolve(42), () => assert.fail("no late outcome expected"));

  assert.equal(await outcome, 42);
  assert.equal(task.interrupt(new Error("too late")), false);
  assert.equal(task.interruption, undefined);
});

test("failed skip without error records SkipMessage", async () => {
  const logs = captureLogs();

  /** Fails and skips every message without giving an error, as a third-party middleware might. */
  class FailSilently extends Middleware {
    override beforeProcessMessage(_broker: unknown, message: MessageProxy): void {
      message.fail();
      throw new SkipMessage("not today");
    }
  }

  const fixture = createStubWorker({ middleware: [new FailSilently(), new Retries()] });
  actor(() => undefined, { broker: fixture.broker, actorName: "skipped" });

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(messageFor("skipped"));
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), (error: unknown) => {
      assert.ok(error instanceof SkipMessage);
      assert.equal(error.message, "not today");
      return true;
    });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("CurrentMessage returns the running message", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new CurrentMessage(), new Retries()] });
  const seen: (string | undefined)[] = [];
  const inspect = actor(
    async () => {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(CurrentMessage.getCurrentMessage()?.messageId);
    },
    { broker: fixture.broker, actorName: "inspect" },
  );

  try {
    await fixture.worker.start();
    const sent = await inspect.send();
    await fixture.broker.join("default", { timeout: 5000 });

    assert.deepEqual(seen, [sent.messageId]);
    assert.equal(CurrentMessage.getCurrentMessage(), undefined, "no message outside a task");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("default middleware order", () => {
  const names = defaultMiddleware().map((middleware) => middleware.constructor.name);
  const pythonOrder = ["AgeLimit", "TimeLimit", "ShutdownNotifications", "Callbacks", "Pipelines", "Retries"];
  assert.deepEqual(names, pythonOrder);

  const stack = defaultMiddleware();
  assert.ok(stack[0] instanceof AgeLimit);
  assert.ok(stack[1] instanceof TimeLimit);
  assert.ok(stack[2] instanceof ShutdownNotifications);
  assert.ok(stack.at(-1) instanceof Retries);
});

// ---------------------------------------------------------------------------
// Compile-time checks: `npm run typecheck` fails when one of them breaks.
// ---------------------------------------------------------------------------

// The usual exact-equality test: each T is meant to appear once.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when `Condition` is `true`. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
function expectType<Condition extends true>(): Condition | undefined {
  return undefined;
}

/** Declares an actor with a `this: TaskContext` parameter, only for the type checks below. */
function declareTypedActor() {
  const broker = new StubBroker({ middleware: [] });
  return actor(
    async function (this: TaskContext, id: string, count: number): Promise<number> {
      this.signal.throwIfAborted();
      return id.length + count;
    },
    { broker, actorName: "typed" },
  );
}

test("this parameter leaves send typed", () => {
  const typed = declareTypedActor();

  expectType<Equal<Parameters<typeof typed.send>, [id: string, count: number]>>();
  expectType<Equal<Parameters<typeof typed.message>, [id: string, count: number]>>();
  expectType<Equal<ThisParameterType<typeof typed.fn>, TaskContext>>();

  const build = (): void => {
    void typed.send("a", 1);
    void typed.sendWithOptions({ args: ["a", 1], timeLimit: 1000 });
    // @ts-expect-error -- send() checks argument types: count is a number.
    void typed.send("a", "1");
    // @ts-expect-error -- the context is never an argument of send().
    void typed.send({ signal: new AbortController().signal }, "a", 1);
    // @ts-expect-error -- a direct call needs a TaskContext as `this`.
    void typed("a", 1);
    const context: TaskContext = { message: new MessageProxy(typed.message("a", 1), "default"), signal: new AbortController().signal };
    void typed.call(context, "a", 1);
  };
  assert.equal(typeof build, "function");
});

test("synchronous aroundActor throw fails message", async () => {
  const logs = captureLogs();

  /** Throws from aroundActor without returning a promise. */
  class ThrowAround extends Middleware {
    override aroundActor(): Promise<unknown> {
      throw new RangeError("around failed");
    }
  }

  const fixture = createStubWorker({ middleware: [new TimeLimit({ timeLimit: 100 }), new ThrowAround(), new Retries({ maxRetries: 0 })] });
  let calls = 0;
  const target = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "target" },
  );

  try {
    await fixture.worker.start();
    await target.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), RangeError);
    assert.equal(calls, 0);

    // The limit of the failed call must not fire later on a finished task.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(logs.find("warn", "Time limit").length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});
