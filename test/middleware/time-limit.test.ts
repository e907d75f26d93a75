/**
 * TimeLimit on the stub broker: hanging and blocking actors fail with
 * TimeLimitExceededError, their slots are freed, and limits resolve from
 * message, actor and middleware in Python Dramatiq's order.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor, type CallableActor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { ConfigurationError, TimeLimitExceededError } from "../../src/errors.js";
import type { Message } from "../../src/message/message.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { TimeLimit } from "../../src/middleware/time-limit.js";
import { currentSignal, type TaskContext } from "../../src/worker/context.js";
import type { MessageProxy } from "../../src/worker/message-proxy.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker, type StubFixture } from "../helpers/stub.js";
import { never, sleep, spin, waitFor } from "./wait.js";

/** Counts acks and nacks per message id. */
class SettleRecorder extends Middleware {
  readonly acks = new Map<string, number>();
  readonly nacks = new Map<string, number>();

  override afterAck(_broker: Broker, message: MessageProxy): void {
    this.acks.set(message.messageId, (this.acks.get(message.messageId) ?? 0) + 1);
  }

  override afterNack(_broker: Broker, message: MessageProxy): void {
    this.nacks.set(message.messageId, (this.nacks.get(message.messageId) ?? 0) + 1);
  }
}

/** Records every message the broker enqueues. */
class EnqueueRecorder extends Middleware {
  readonly enqueued: Message[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }
}

function timeLimitWorker(timeLimit?: number | null, extra: Middleware[] = []): StubFixture {
  const timeLimitMiddleware = timeLimit === undefined ? new TimeLimit() : new TimeLimit({ timeLimit });
  return createStubWorker({ concurrency: 2, middleware: [timeLimitMiddleware, new Retries(), ...extra] });
}

/** Declares `hang`, which never settles, and `quick`, which takes 10 ms. */
function declareHangAndQuick(fixture: StubFixture): { hang: CallableActor<() => Promise<never>>; quick: CallableActor<() => Promise<void>>; quickDone: () => number } {
  let quickDone = 0;
  const hang = actor(() => never(), { broker: fixture.broker, actorName: "hang", timeLimit: 200, maxRetries: 0 });
  const quick = actor(
    async () => {
      await sleep(10);
      quickDone += 1;
    },
    { broker: fixture.broker, actorName: "quick" },
  );
  return { hang, quick, quickDone: () => quickDone };
}

test("time limit fails hanging tasks", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const { hang } = declareHangAndQuick(fixture);

  try {
    await fixture.worker.start();
    const sent: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      sent.push((await hang.send()).messageId);
    }
    await fixture.broker.join("default", { timeout: 15_000, failFast: false });

    const dead = fixture.broker.deadLettersOf("default");
    assert.equal(dead.length, 20, "every hanging message is dead-lettered");
    assert.deepEqual(dead.map((letter) => letter.message?.messageId).sort(), [...sent].sort());
    for (const letter of dead) {
      assert.ok(letter.error instanceof TimeLimitExceededError, `error of ${letter.message?.messageId}: ${String(letter.error)}`);
    }
    assert.equal(logs.find("warn", "Time limit of 200 ms exceeded").length, 20);
    assert.equal(logs.find("info", "Retrying message").length, 0, "maxRetries 0 means no retry");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("time limit frees slots for quick messages", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const { hang, quick, quickDone } = declareHangAndQuick(fixture);

  try {
    await fixture.worker.start();
    for (let index = 0; index < 20; index += 1) {
      await hang.send();
    }
    for (let index = 0; index < 5; index += 1) {
      await quick.send();
    }

    // No hang promise ever settles, so only freed slots can run these.
    await waitFor("5 quick messages done", () => quickDone() === 5, 15_000);
    assert.equal(quickDone(), 5);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("time limit leaves pool whole", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const { hang, quick, quickDone } = declareHangAndQuick(fixture);
  let running = 0;
  let overlapped = false;
  const pair = actor(
    async () => {
      running += 1;
      await waitFor("a second task running beside this one", () => running === 2 || overlapped, 5000);
      overlapped = true;
      await sleep(10);
      running -= 1;
    },
    { broker: fixture.broker, actorName: "pair", maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    for (let index = 0; index < 20; index += 1) {
      await hang.send();
    }
    await fixture.broker.join("default", { timeout: 15_000, failFast: false });
    await waitFor("no slot held by an abandoned task", () => fixture.worker.activeTasks === 0);

    await quick.send();
    await waitFor("fresh quick message done", () => quickDone() === 1, 5000);

    // Both slots still exist: two tasks can run at the same time.
    await pair.send();
    await pair.send();
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });
    assert.equal(fixture.broker.deadLettersOf("default").length, 20, "only the hanging messages failed");
    assert.equal(overlapped, true);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("message time limit beats actor option", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const slow = actor(() => never(), { broker: fixture.broker, actorName: "slow", timeLimit: 10_000, maxRetries: 0 });

  try {
    await fixture.worker.start();
    const sent = await slow.sendWithOptions({ timeLimit: 300 });
    assert.equal(sent.options["time_limit"], 300);

    // The join bound is half the actor's limit, so only the message's can fail it in time.
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), TimeLimitExceededError);
    const warnings = logs.find("warn", "Time limit of 300 ms exceeded");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.fields["messageId"], sent.messageId);
    assert.equal(warnings[0]?.fields["actorName"], "slow");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("message time limit Infinity disables limit", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  let finished = false;
  const slowish = actor(
    async () => {
      await sleep(300);
      finished = true;
    },
    { broker: fixture.broker, actorName: "slowish", timeLimit: 50, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const sent = await slowish.sendWithOptions({ timeLimit: Infinity });
    assert.match(sent.encode().toString("utf8"), /"time_limit":Infinity/, "Infinity travels as the bare token");

    await fixture.broker.join("default", { timeout: 5000 });
    assert.equal(finished, true);
    assert.equal(logs.find("warn", "Time limit").length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("actor time limit null or Infinity disables limit", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker(50);
  const finished: string[] = [];
  const withNull = actor(
    async () => {
      await sleep(300);
      finished.push("null");
    },
    { broker: fixture.broker, actorName: "with_null", timeLimit: null, maxRetries: 0 },
  );
  const withInfinity = actor(
    async () => {
      await sleep(300);
      finished.push("infinity");
    },
    { broker: fixture.broker, actorName: "with_infinity", timeLimit: Infinity, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    await withNull.send();
    await withInfinity.send();
    await fixture.broker.join("default", { timeout: 5000 });

    assert.deepEqual(finished.sort(), ["infinity", "null"]);
    assert.equal(logs.find("warn", "Time limit").length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("middleware time limit null disables default", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker(null);
  let finished = false;
  const plain = actor(
    async () => {
      await sleep(100);
      finished = true;
    },
    { broker: fixture.broker, actorName: "plain", maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    await plain.send();
    await fixture.broker.join("default", { timeout: 5000 });
    assert.equal(finished, true);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("message time limit 0 falls through to actor", async () => {
  // Python Dramatiq reads time_limit with `or`, so 0 and null mean "not set".
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const slow = actor(() => never(), { broker: fixture.broker, actorName: "slow", timeLimit: 100, maxRetries: 0 });

  try {
    await fixture.worker.start();
    await slow.sendWithOptions({ timeLimit: 0 });
    await slow.sendWithOptions({ timeLimit: null });
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    assert.equal(fixture.broker.deadLettersOf("default").length, 2);
    assert.equal(logs.find("warn", "Time limit of 100 ms exceeded").length, 2);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid message time limit is ignored with warning", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const slow = actor(() => never(), { broker: fixture.broker, actorName: "slow", timeLimit: 100, maxRetries: 0 });

  try {
    await fixture.worker.start();
    const sent = await slow.sendWithOptions({ timeLimit: "50" });
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), TimeLimitExceededError);

    const invalid = logs.find("warn", "invalid time_limit option");
    assert.equal(invalid.length, 1);
    assert.equal(invalid[0]?.fields["messageId"], sent.messageId);
    assert.equal(logs.find("warn", "Time limit of 100 ms exceeded").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("synchronous spin past limit fails", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  let quickDone = 0;
  const busy = actor(
    () => {
      spin(600);
      return "done";
    },
    { broker: fixture.broker, actorName: "busy", timeLimit: 200, maxRetries: 0 },
  );
  const quick = actor(
    () => {
      quickDone += 1;
    },
    { broker: fixture.broker, actorName: "quick" },
  );

  try {
    await fixture.worker.start();
    const sent = await busy.send();
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });

    const dead = fixture.broker.deadLettersOf("default");
    assert.equal(dead.length, 1, "the spinning message is dead-lettered, not acked");
    assert.equal(dead[0]?.message?.messageId, sent.messageId);
    assert.ok(dead[0]?.error instanceof TimeLimitExceededError);

    // The worker keeps consuming afterwards.
    await quick.send();
    await waitFor("quick message after the spin", () => quickDone === 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("synchronous throw past limit keeps cause", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const busy = actor(
    () => {
      spin(400);
      throw new RangeError("gave up");
    },
    { broker: fixture.broker, actorName: "busy", timeLimit: 100, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    await busy.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 10_000 }), (error: unknown) => {
      assert.ok(error instanceof TimeLimitExceededError);
      assert.ok(error.cause instanceof RangeError);
      return true;
    });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("signal aborts with TimeLimitExceededError", async () => {
  const logs = captureLogs();
  const fixture = timeLimitWorker();
  const reasons: unknown[] = [];
  let sameSignal = false;
  const watcher = actor(
    async function (this: TaskContext) {
      sameSignal = currentSignal() === this.signal;
      const reason = await new Promise<unknown>((resolve) => {
        this.signal.addEventListener("abort", () => {
          resolve(this.signal.reason);
        });
      });
      reasons.push(reason);
      throw reason;
    },
    { broker: fixture.broker, actorName: "watcher", timeLimit: 150, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const sent = await watcher.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), TimeLimitExceededError);
    await waitFor("abort listener ran", () => reasons.length === 1);

    assert.equal(sameSignal, true, "this.signal and currentSignal() are one signal");
    assert.ok(reasons[0] instanceof TimeLimitExceededError);
    assert.equal(fixture.broker.deadLettersOf("default")[0]?.error, reasons[0], "the message fails with the abort reason");
    assert.match((reasons[0] as Error).message, new RegExp(sent.messageId));
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("late result is ignored and settled once", async () => {
  const logs = captureLogs();
  const settles = new SettleRecorder();
  const fixture = timeLimitWorker(undefined, [settles]);
  let returned = false;
  const late = actor(
    async () => {
      await sleep(400);
      returned = true;
      return "too late";
    },
    { broker: fixture.broker, actorName: "late", timeLimit: 100, maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const sent = await late.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await waitFor("late actor returned", () => returned);
    await waitFor("late outcome logged", () => logs.find("debug", "returned after message").length === 1);

    assert.equal(settles.nacks.get(sent.messageId), 1);
    assert.equal(settles.acks.get(sent.messageId), undefined, "a late success is never acked");
    assert.equal(fixture.broker.deadLettersOf("default").length, 1);
    assert.equal(logs.find("debug", "returned after message")[0]?.fields["messageId"], sent.messageId);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("time limit failure is retried", async () => {
  const logs = captureLogs();
  const recorder = new EnqueueRecorder();
  const fixture = timeLimitWorker(undefined, [recorder]);
  let calls = 0;
  const stuck = actor(
    () => {
      calls += 1;
      return never();
    },
    { broker: fixture.broker, actorName: "stuck", timeLimit: 100, maxRetries: 1, minBackoff: 1, maxBackoff: 1 },
  );

  try {
    await fixture.worker.start();
    await stuck.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), TimeLimitExceededError);

    assert.equal(calls, 2, "one attempt and one retry");
    const retried = recorder.enqueued.filter((message) => message.queueName === "default.DQ");
    assert.equal(retried.length, 1);
    assert.match(String(retried[0]?.options["traceback"]), /TimeLimitExceededError/);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid actor time limit is rejected", () => {
  const fixture = timeLimitWorker();
  for (const timeLimit of [-1, Number.NaN, "1000"]) {
    assert.throws(
      () => actor(() => undefined, { broker: fixture.broker, actorName: `bad_${String(timeLimit)}`, timeLimit: timeLimit as number }),
      (error: unknown) => error instanceof ConfigurationError && /Invalid timeLimit/.test(error.message),
      `timeLimit ${String(timeLimit)}`,
    );
  }
  assert.throws(() => new TimeLimit({ timeLimit: -5 }), ConfigurationError);
});
