/** AgeLimit on the stub broker: expired messages are dead-lettered unrun, without retries. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { ConfigurationError, SkipMessage } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { AgeLimit } from "../../src/middleware/age-limit.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { StubBackend } from "../../src/results/backends/stub.js";
import type { ResultAddress } from "../../src/results/backend.js";
import { ResultFailureError } from "../../src/results/errors.js";
import { Results } from "../../src/results/results.js";
import type { MessageProxy } from "../../src/worker/message-proxy.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";
import { resultCase } from "../results/vector.js";

/** A StubBackend that also returns the stored text, to compare it with Python's bytes. */
class InspectableBackend extends StubBackend {
  storedText(message: ResultAddress): Promise<string | null> {
    return this.readText(this.buildMessageKey(message));
  }
}

/** Records the enqueues and the after-process calls, to show that no retry happens. */
class OutcomeRecorder extends Middleware {
  readonly enqueued: Message[] = [];
  readonly processed: MessageProxy[] = [];
  readonly skipped: MessageProxy[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }

  override afterProcessMessage(_broker: Broker, message: MessageProxy): void {
    this.processed.push(message);
  }

  override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
    this.skipped.push(message);
  }
}

/** Builds a message for `actorName` that was created `age` ms ago. */
function oldMessage(actorName: string, age: number, options: Record<string, unknown> = {}): Message {
  return new Message({ queueName: "default", actorName, args: [], options, messageTimestamp: Date.now() - age });
}

test("age limit dead-letters expired message unrun", async () => {
  const logs = captureLogs();
  const recorder = new OutcomeRecorder();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries(), recorder] });
  let calls = 0;
  const report = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "report", maxAge: 1000 },
  );

  try {
    await fixture.worker.start();
    const expired = await fixture.broker.enqueue(oldMessage(report.actorName, 5000));
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), (error: unknown) => {
      assert.ok(error instanceof SkipMessage);
      assert.equal(error.message, "Message age limit exceeded");
      return true;
    });

    assert.equal(calls, 0, "the actor never runs");
    const dead = fixture.broker.deadLettersOf("default");
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.message?.messageId, expired.messageId);
    assert.equal(recorder.enqueued.length, 1, "no retry is enqueued");
    assert.equal(recorder.processed.length, 0, "afterProcessMessage does not run, so neither Retries nor callbacks see it");
    assert.equal(recorder.skipped.length, 1);

    const warning = logs.find("warn", "past its age limit of 1000 ms");
    assert.equal(warning.length, 1);
    assert.equal(warning[0]?.fields["messageId"], expired.messageId);
    assert.equal(warning[0]?.fields["actorName"], "report");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("age limit runs young message", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries()] });
  let calls = 0;
  const report = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "report", maxAge: 60_000 },
  );

  try {
    await fixture.worker.start();
    await report.send();
    await fixture.broker.enqueue(oldMessage(report.actorName, 1000));
    await fixture.broker.join("default", { timeout: 5000 });
    assert.equal(calls, 2);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("age limit stores SkipMessage result", async () => {
  const logs = captureLogs();
  const backend = new InspectableBackend();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries(), new Results({ backend, storeResults: true })] });
  const report = actor(() => 1, { broker: fixture.broker, actorName: "report" });

  try {
    await fixture.worker.start();
    const expired = await fixture.broker.enqueue(oldMessage(report.actorName, 5000, { max_age: 1000 }));
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    // Python Dramatiq stored this text for an age-limited message.
    assert.equal(await backend.storedText(expired), resultCase("age_limit_skip").redis_list[0]);
    await assert.rejects(backend.getResult(expired), (error: unknown) => {
      assert.ok(error instanceof ResultFailureError);
      assert.equal(error.origExcType, "SkipMessage");
      assert.equal(error.origExcMsg, "Message age limit exceeded");
      return true;
    });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("message max_age beats actor option", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries()] });
  let calls = 0;
  const report = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "report", maxAge: 60_000 },
  );

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(oldMessage(report.actorName, 5000, { max_age: 1000 }));
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    assert.equal(calls, 0);
    assert.equal(fixture.broker.deadLettersOf("default").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("max_age 0 or null means no limit", async () => {
  // Python Dramatiq reads max_age with `or` and tests it for truth.
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries()] });
  let calls = 0;
  const report = actor(
    () => {
      calls += 1;
    },
    { broker: fixture.broker, actorName: "report", maxAge: 0 },
  );

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(oldMessage(report.actorName, 5000, { max_age: 0 }));
    await fixture.broker.enqueue(oldMessage(report.actorName, 5000, { max_age: null }));
    await fixture.broker.enqueue(oldMessage(report.actorName, 5000));
    await fixture.broker.join("default", { timeout: 5000 });
    assert.equal(calls, 3);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("age limit middleware default applies", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new AgeLimit({ maxAge: 1000 }), new Retries()] });
  const report = actor(() => undefined, { broker: fixture.broker, actorName: "report" });

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(oldMessage(report.actorName, 5000));
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), SkipMessage);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid message max_age is ignored with warning", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries()] });
  const report = actor(() => undefined, { broker: fixture.broker, actorName: "report", maxAge: 1000 });

  try {
    await fixture.worker.start();
    const sent = await fixture.broker.enqueue(oldMessage(report.actorName, 5000, { max_age: "forever" }));
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), SkipMessage);

    const invalid = logs.find("warn", "invalid max_age option");
    assert.equal(invalid.length, 1);
    assert.equal(invalid[0]?.fields["messageId"], sent.messageId);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid actor max age is rejected", () => {
  const fixture = createStubWorker({ middleware: [new AgeLimit(), new Retries()] });
  for (const maxAge of [-1, Number.NaN, "60000"]) {
    assert.throws(
      () => actor(() => undefined, { broker: fixture.broker, actorName: `bad_${String(maxAge)}`, maxAge: maxAge as number }),
      (error: unknown) => error instanceof ConfigurationError && /Invalid maxAge/.test(error.message),
      `maxAge ${String(maxAge)}`,
    );
  }
  assert.equal(fixture.broker.actors.size, 0, "a rejected actor is not declared");
  assert.throws(() => new AgeLimit({ maxAge: -1 }), ConfigurationError);
});
