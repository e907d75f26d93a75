import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { ConfigurationError, ConnectionFailedError, Retry } from "../../src/errors.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import type { Message } from "../../src/message/message.js";
import { computeBackoff, MAX_BACKOFF_CAP } from "../../src/middleware/backoff.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";
import { loadVector } from "../helpers/vectors.js";

interface BackoffRow {
  retries_before_this_failure: number;
  jittered_min_ms: number;
  jittered_max_ms: number;
}

/** Records every message the broker enqueues. */
class EnqueueRecorder extends Middleware {
  readonly enqueued: Message[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }
}

test("backoff matches Python table bounds", () => {
  const vector = loadVector("backoff.json") as { table: BackoffRow[]; min_backoff_default_ms: number; max_backoff_default_ms: number };
  for (const row of vector.table) {
    const low = computeBackoff(row.retries_before_this_failure, vector.min_backoff_default_ms, vector.max_backoff_default_ms, () => 0);
    const high = computeBackoff(row.retries_before_this_failure, vector.min_backoff_default_ms, vector.max_backoff_default_ms, () => 1 - 2 ** -53);
    assert.ok(low >= row.jittered_min_ms, `retries=${row.retries_before_this_failure} low=${low}`);
    assert.ok(high <= row.jittered_max_ms, `retries=${row.retries_before_this_failure} high=${high}`);
  }
});

test("backoff stays finite and capped", () => {
  for (const attempt of [0, 1, 10, 100, 1000, Number.MAX_SAFE_INTEGER]) {
    for (const random of [() => 0, () => 0.5, () => 1 - 2 ** -53]) {
      const delay = computeBackoff(attempt, 15000, MAX_BACKOFF_CAP, random);
      assert.ok(Number.isSafeInteger(delay), `attempt=${attempt} delay=${delay}`);
      assert.ok(delay >= 0, `attempt=${attempt} delay=${delay}`);
      assert.ok(delay <= MAX_BACKOFF_CAP, `attempt=${attempt} delay=${delay}`);
    }
  }
  assert.equal(computeBackoff(0, 0, 0), 0);
});

test("retries respect backoff bounds then dead-letter", async () => {
  const logs = captureLogs();
  const recorder = new EnqueueRecorder();
  const fixture = createStubWorker({ middleware: [new Retries(), recorder] });
  let attempts = 0;
  const flaky = actor(
    () => {
      attempts += 1;
      throw new Error("always");
    },
    { broker: fixture.broker, actorName: "flaky", minBackoff: 10, maxBackoff: 80, maxRetries: 6 },
  );

  try {
    await fixture.worker.start();
    const sent = await flaky.send();
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });
    await fixture.worker.join();

    assert.equal(attempts, 7);
    const retried = recorder.enqueued.filter((message) => message.messageId === sent.messageId && message.queueName === "default.DQ");
    assert.equal(retried.length, 6);
    retried.forEach((message, index) => {
      const delay = (message.options["eta"] as number) - (message.options["requeue_timestamp"] as number);
      assert.ok(delay >= 10, `retry ${index + 1} delay ${delay}`);
      assert.ok(delay <= 80, `retry ${index + 1} delay ${delay}`);
      assert.equal(message.options["retries"], index + 1);
      assert.equal(typeof message.options["traceback"], "string");
      assert.ok((message.options["traceback"] as string).length <= 8000);
    });

    const letters = fixture.broker.deadLettersOf("default");
    assert.equal(letters.length, 1);
    assert.equal(letters[0]?.message?.options["retries"], 6);
    assert.equal(logs.find("warn", "Retries exceeded").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("zero backoff in message wins over actor", async () => {
  const logs = captureLogs();
  const recorder = new EnqueueRecorder();
  const fixture = createStubWorker({ middleware: [new Retries(), recorder] });
  const flaky = actor(
    () => {
      throw new Error("always");
    },
    { broker: fixture.broker, actorName: "flaky", minBackoff: 1000, maxBackoff: 8000, maxRetries: 2 },
  );

  try {
    await fixture.worker.start();
    await flaky.sendWithOptions({ minBackoff: 0, maxBackoff: 0 });
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();

    const retried = recorder.enqueued.filter((message) => message.queueName === "default.DQ");
    assert.equal(retried.length, 2);
    for (const message of retried) {
      assert.equal((message.options["eta"] as number) - (message.options["requeue_timestamp"] as number), 0);
    }
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("Retry error delay is used exactly", async () => {
  const logs = captureLogs();
  const recorder = new EnqueueRecorder();
  const fixture = createStubWorker({ middleware: [new Retries(), recorder] });
  const wantsRetry = actor(
    () => {
      throw new Retry("later", { delay: 2500 });
    },
    { broker: fixture.broker, actorName: "wants_retry" },
  );

  try {
    await fixture.worker.start();
    await wantsRetry.send();
    await fixture.broker.join("default", { timeout: 300 }).catch(() => undefined);

    const retried = recorder.enqueued.filter((message) => message.queueName === "default.DQ");
    assert.equal(retried.length, 1);
    const message = retried[0]!;
    assert.equal((message.options["eta"] as number) - (message.options["requeue_timestamp"] as number), 2500);
    assert.equal(logs.find("info", "Retrying message").length, 1);
  } finally {
    await fixture.broker.flushAll();
    await fixture.stop();
    logs.restore();
  }
});

test("throws option fails without retry", async () => {
  class Permanent extends Error {}

  const logs = captureLogs();
  const fixture = createStubWorker();
  let attempts = 0;
  const strict = actor(
    () => {
      attempts += 1;
      throw new Permanent("no point retrying");
    },
    { broker: fixture.broker, actorName: "strict", throws: [Permanent] },
  );

  try {
    await fixture.worker.start();
    await strict.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), Permanent);
    assert.equal(attempts, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("failed retry enqueue requeues, not dead-letters", async () => {
  // The broker cannot take the retry (e.g. its connection is down): the
  // message must neither be lost nor dead-lettered with retries left.
  class FailFirstRetry extends Middleware {
    failed = 0;

    override beforeEnqueue(_broker: Broker, message: Message): void {
      if (message.options["retries"] !== undefined && this.failed === 0) {
        this.failed += 1;
        throw new ConnectionFailedError("broker unreachable");
      }
    }
  }

  const logs = captureLogs();
  const failFirst = new FailFirstRetry();
  const fixture = createStubWorker({ middleware: [failFirst, new Retries({ minBackoff: 1, maxBackoff: 1 })] });
  let attempts = 0;
  const flaky = actor(
    () => {
      attempts += 1;
      if (attempts <= 2) {
        throw new Error(`attempt ${attempts} failed`);
      }
    },
    { broker: fixture.broker, actorName: "flaky", maxRetries: 5 },
  );

  try {
    await fixture.worker.start();
    await flaky.send();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();

    assert.equal(failFirst.failed, 1);
    assert.equal(attempts, 3, "the requeued message ran again, then its scheduled retry");
    assert.equal(fixture.broker.deadLetters.length, 0);
    assert.equal(logs.find("error", "Failed to enqueue the retry").length, 1);
    assert.equal(logs.find("warn", "Returned message").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("rejected retry enqueue dead-letters once", async () => {
  // An error that no reconnect fixes must not send the message round forever.
  class RejectRetries extends Middleware {
    rejected = 0;

    override beforeEnqueue(_broker: Broker, message: Message): void {
      if (message.options["retries"] !== undefined) {
        this.rejected += 1;
        throw new ConfigurationError("retries are not allowed here");
      }
    }
  }

  const logs = captureLogs();
  const rejecter = new RejectRetries();
  const fixture = createStubWorker({ middleware: [rejecter, new Retries({ minBackoff: 1, maxBackoff: 1 })] });
  let attempts = 0;
  const failing = actor(
    () => {
      attempts += 1;
      throw new Error("always fails");
    },
    { broker: fixture.broker, actorName: "failing", maxRetries: 3 },
  );

  try {
    await fixture.worker.start();
    await failing.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), /always fails/);
    await fixture.worker.join();

    assert.equal(attempts, 1);
    assert.equal(rejecter.rejected, 1);
    assert.equal(fixture.broker.deadLetters.length, 1);
    assert.equal(logs.find("error", "Moving the message to the dead-letter queue").length, 1);
    assert.equal(logs.find("warn", "Returned message").length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("negative Retry delay retries at once", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  let attempts = 0;
  const late = actor(
    () => {
      attempts += 1;
      if (attempts === 1) {
        // A Retry-After time that has already passed.
        throw new Retry("try again", { delay: -5000 });
      }
    },
    { broker: fixture.broker, actorName: "late", maxRetries: 1 },
  );

  try {
    await fixture.worker.start();
    await late.send();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();

    assert.equal(attempts, 2);
    assert.equal(fixture.broker.deadLetters.length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("retryWhen replaces maxRetries", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const seen: number[] = [];
  const picky = actor(
    () => {
      throw new Error("fail");
    },
    {
      broker: fixture.broker,
      actorName: "picky",
      minBackoff: 1,
      maxBackoff: 2,
      retryWhen: (retries) => {
        seen.push(retries);
        return retries < 2;
      },
    },
  );

  try {
    await fixture.worker.start();
    await picky.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(fixture.broker.deadLettersOf("default").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("onRetryExhausted actor is notified", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const notices: unknown[][] = [];
  actor((messageDict: unknown, info: unknown) => void notices.push([messageDict, info]), { broker: fixture.broker, actorName: "on_exhausted" });
  const doomed = actor(
    () => {
      throw new Error("doomed");
    },
    { broker: fixture.broker, actorName: "doomed", maxRetries: 1, minBackoff: 1, maxBackoff: 2, onRetryExhausted: "on_exhausted" },
  );

  try {
    await fixture.worker.start();
    const sent = await doomed.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();

    assert.equal(notices.length, 1);
    const [messageDict, info] = notices[0] as [Record<string, unknown>, Record<string, unknown>];
    assert.equal(messageDict["message_id"], sent.messageId);
    assert.equal((messageDict["options"] as Record<string, unknown>)["retries"], 2);
    assert.deepEqual(info, { retries: 1, max_retries: 1 });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("wrong option types are ignored with warning", async () => {
  const logs = captureLogs();
  const recorder = new EnqueueRecorder();
  const fixture = createStubWorker({ middleware: [new Retries(), recorder] });
  let attempts = 0;
  const flaky = actor(
    () => {
      attempts += 1;
      throw new Error("fail");
    },
    { broker: fixture.broker, actorName: "flaky", maxRetries: 1, minBackoff: 1, maxBackoff: 2 },
  );

  try {
    await fixture.worker.start();
    const sent = await flaky.sendWithOptions({ maxRetries: "lots", minBackoff: { ms: 5 }, maxBackoff: -1 });
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();

    // The actor's values applied: one retry, with its small backoff.
    assert.equal(attempts, 2);
    const warnings = logs.find("warn", "has an invalid");
    assert.ok(warnings.some((entry) => entry.message.includes("max_retries") && entry.fields["messageId"] === sent.messageId));
    assert.ok(warnings.some((entry) => entry.message.includes("min_backoff")));
    assert.ok(warnings.some((entry) => entry.message.includes("max_backoff")));
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid retry options are rejected at declaration", () => {
  const broker = new StubBroker();
  const invalid: Record<string, unknown>[] = [
    { maxRetries: -1 },
    { maxRetries: 1.5 },
    { maxRetries: "3" },
    { minBackoff: -5 },
    { maxBackoff: Number.NaN },
    { retryWhen: true },
    { throws: ["Error"] },
  ];
  for (const options of invalid) {
    assert.throws(
      () => actor(() => undefined, { broker, actorName: `bad_${Object.keys(options)[0]}_${String(Object.values(options)[0])}`, ...options }),
      (error: unknown) => error instanceof ConfigurationError && error.message.includes(Object.keys(options)[0]!),
      JSON.stringify(options),
    );
  }

  actor(() => undefined, { broker, actorName: "forever", maxRetries: null });
});

test("onRetryExhausted accepts an actor", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const notices: unknown[] = [];
  const onExhausted = actor((_messageDict: unknown, info: unknown) => void notices.push(info), { broker: fixture.broker, actorName: "on_exhausted" });
  const doomed = actor(
    () => {
      throw new Error("doomed");
    },
    { broker: fixture.broker, actorName: "doomed", maxRetries: 0, onRetryExhausted: onExhausted },
  );

  try {
    await fixture.worker.start();
    await doomed.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();
    assert.deepEqual(notices, [{ retries: 0, max_retries: 0 }]);
    assert.throws(
      () => actor(() => undefined, { broker: fixture.broker, actorName: "bad_target", ...({ onRetryExhausted: 42 } as object) }),
      /onRetryExhausted/,
    );
  } finally {
    await fixture.stop();
    logs.restore();
  }
});
