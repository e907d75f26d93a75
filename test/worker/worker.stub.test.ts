import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { ActorNotFoundError, ConnectionFailedError, QueueJoinTimeoutError, SkipMessage } from "../../src/errors.js";
import { currentMessage, currentSignal } from "../../src/worker/context.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import type { Broker } from "../../src/broker.js";
import type { Message } from "../../src/message/message.js";
import type { MessageProxy } from "../../src/worker/message-proxy.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";

class BoomError extends Error {
  override name = "BoomError";
}

test("worker runs sent messages with args and kwargs", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const calls: unknown[][] = [];
  const greet = actor(
    async (name: string, options?: { punctuation?: string }) => {
      calls.push([name, options]);
    },
    { broker: fixture.broker, actorName: "greet" },
  );

  try {
    await fixture.worker.start();
    await greet.send("Ada");
    await greet.sendWithOptions({ args: ["Grace"], kwargs: { punctuation: "!" } });
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();

    assert.deepEqual(calls, [
      ["Ada", undefined],
      ["Grace", { punctuation: "!" }],
    ]);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("worker exposes current message and signal", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const seen: { id: string | undefined; aborted: boolean | undefined }[] = [];
  const inspect = actor(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push({ id: currentMessage()?.messageId, aborted: currentSignal()?.aborted });
    },
    { broker: fixture.broker, actorName: "inspect" },
  );

  try {
    await fixture.worker.start();
    const sent = await inspect.send();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();

    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.id, sent.messageId);
    assert.equal(seen[0]?.aborted, false);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("join rejects fast with the actor error", async () => {
  // A failing actor with no retries left must fail the test at once, not hang it.
  const logs = captureLogs();
  const fixture = createStubWorker();
  const bad = actor(
    () => {
      throw new BoomError("boom");
    },
    { broker: fixture.broker, actorName: "bad", maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    await bad.send();
    await assert.rejects(fixture.broker.join("default"), (error: unknown) => {
      assert.ok(error instanceof BoomError);
      assert.equal(error.message, "boom");
      return true;
    });
    assert.equal(logs.find("error", "Failed to process message bad()").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("join times out while retries are pending", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const flaky = actor(
    () => {
      throw new BoomError("still failing");
    },
    { broker: fixture.broker, actorName: "flaky" },
  );

  try {
    await fixture.worker.start();
    await flaky.send();
    await assert.rejects(fixture.broker.join("default", { timeout: 500 }), (error: unknown) => {
      assert.ok(error instanceof QueueJoinTimeoutError);
      assert.match(error.message, /1 delayed/);
      assert.match(error.message, /retries/);
      return true;
    });
    assert.equal(logs.find("info", "Retrying message").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("join waits for delayed messages", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  let ran = 0;
  const ok = actor(
    () => {
      ran += 1;
    },
    { broker: fixture.broker, actorName: "ok" },
  );

  try {
    await fixture.worker.start();
    const sent = await ok.sendWithOptions({ delay: 300 });
    assert.equal(sent.queueName, "default.DQ");
    assert.equal(typeof sent.options["eta"], "number");

    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();
    assert.equal(ran, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("failed release of delayed message retried", async () => {
  // The broker is unreachable when the message falls due: the worker must
  // try again rather than leave the delivery unacked until it stops.
  class FailFirstRelease extends Middleware {
    failed = 0;

    override beforeEnqueue(_broker: Broker, message: Message, delay: number | undefined): void {
      const isRelease = delay === undefined && !message.queueName.endsWith(".DQ");
      if (isRelease && this.failed === 0) {
        this.failed += 1;
        throw new ConnectionFailedError("broker unreachable");
      }
    }
  }

  const logs = captureLogs();
  const failFirst = new FailFirstRelease();
  const fixture = createStubWorker({ middleware: [failFirst] });
  let ran = 0;
  const ok = actor(
    () => {
      ran += 1;
    },
    { broker: fixture.broker, actorName: "ok" },
  );

  try {
    await fixture.worker.start();
    await ok.sendWithOptions({ delay: 50 });
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.equal(failFirst.failed, 1);
    assert.equal(ran, 1);
    assert.equal(logs.find("error", "trying again in 1000 ms").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("flushAll isolates the next test", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ concurrency: 1 });
  let ran = 0;
  let release: () => void = () => {};
  const slow = actor(
    async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    { broker: fixture.broker, actorName: "slow" },
  );
  const ok = actor(
    () => {
      ran += 1;
    },
    { broker: fixture.broker, actorName: "ok" },
  );

  try {
    await fixture.worker.start();

    // "Test A" leaves a running task, a waiting message and a delayed one behind.
    await slow.send();
    await ok.send();
    await ok.sendWithOptions({ delay: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fixture.broker.flushAll();
    release();

    // "Test B" only waits for its own message.
    await ok.send();
    await fixture.broker.join("default", { timeout: 2000 });
    await fixture.worker.join();
    assert.equal(ran, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("join without failFast returns with dead letter", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const bad = actor(
    () => {
      throw new BoomError("boom");
    },
    { broker: fixture.broker, actorName: "bad", maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const sent = await bad.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();

    const letters = fixture.broker.deadLettersOf("default");
    assert.equal(letters.length, 1);
    assert.equal(letters[0]?.message?.messageId, sent.messageId);
    assert.equal(letters[0]?.queueName, "default.XQ");
    assert.ok(letters[0]?.error instanceof BoomError);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("bad messages are dead-lettered and worker continues", async () => {
  // Bodies a-g of the bad-message field case, on the stub broker.
  const logs = captureLogs();
  const fixture = createStubWorker({ concurrency: 1 });
  const received: string[] = [];
  actor(
    (label: string) => {
      received.push(label);
    },
    { broker: fixture.broker, actorName: "echo" },
  );
  const body = (label: string, options: Record<string, unknown>): Buffer =>
    Buffer.from(
      JSON.stringify({
        queue_name: "default",
        actor_name: "echo",
        args: [label],
        kwargs: {},
        options,
        message_id: `00000000-0000-4000-8000-00000000000${label}`,
        message_timestamp: Date.now(),
      }),
    );

  try {
    await fixture.worker.start();
    fixture.broker.publishBody("default", Buffer.from([0x80, 0xff, 0x00]));
    fixture.broker.publishBody("default", Buffer.from("not json"));
    fixture.broker.publishBody("default", Buffer.from(JSON.stringify({ queue_name: "default", args: [], kwargs: {}, options: {} })));
    fixture.broker.publishBody("default", body("d", { eta: null }));
    fixture.broker.publishBody("default", body("e", { eta: "tomorrow" }));
    fixture.broker.publishBody("default", body("f", { eta: Date.now() - 3_600_000 }));
    fixture.broker.publishBody("default", body("g", {}));

    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();

    assert.deepEqual([...received].sort(), ["d", "e", "f", "g"]);
    assert.equal(fixture.broker.deadLettersOf("default").length, 3);
    assert.equal(logs.find("error", "undecodable").length, 3);
    assert.equal(logs.find("warn", "invalid eta").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("unknown actor is dead-lettered without retries", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  actor(() => undefined, { broker: fixture.broker, actorName: "known" });

  try {
    await fixture.worker.start();
    fixture.broker.publishBody(
      "default",
      Buffer.from('{"queue_name":"default","actor_name":"render_report","args":[],"kwargs":{},"options":{}}'),
    );
    await assert.rejects(fixture.broker.join("default", { timeout: 5000 }), ActorNotFoundError);
    assert.equal(logs.find("error", "'render_report' is not declared").length, 1);
    assert.equal(logs.find("info", "Retrying").length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("skip in middleware acks without running", async () => {
  class SkipAll extends Middleware {
    override beforeProcessMessage(_broker: Broker, _message: MessageProxy): void {
      throw new SkipMessage("skipped by test");
    }
  }

  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Retries(), new SkipAll()] });
  let ran = 0;
  const target = actor(
    () => {
      ran += 1;
    },
    { broker: fixture.broker, actorName: "target" },
  );

  try {
    await fixture.worker.start();
    await target.send();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();
    assert.equal(ran, 0);
    assert.equal(fixture.broker.deadLetters.length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("skip in actor acks without retry", async () => {
  class RecordSkips extends Middleware {
    readonly skipped: string[] = [];
    readonly processed: string[] = [];

    override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
      this.skipped.push(message.messageId);
    }

    override afterProcessMessage(_broker: Broker, message: MessageProxy): void {
      this.processed.push(message.messageId);
    }
  }

  const logs = captureLogs();
  const recorder = new RecordSkips();
  const fixture = createStubWorker({ middleware: [new Retries({ minBackoff: 1, maxBackoff: 1 }), recorder] });
  let runs = 0;
  const target = actor(
    async () => {
      runs += 1;
      await Promise.resolve();
      throw new SkipMessage("nothing to do");
    },
    { broker: fixture.broker, actorName: "target", maxRetries: 2 },
  );

  try {
    await fixture.worker.start();
    const message = await target.send();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();

    assert.equal(runs, 1, "a skipped message is not retried");
    assert.equal(fixture.broker.deadLetters.length, 0);
    assert.deepEqual(recorder.skipped, [message.messageId]);
    assert.deepEqual(recorder.processed, [], "afterProcessMessage does not run for a skip");
    assert.equal(logs.find("error", "").length, 0, "a skip is not logged as an error");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("concurrency bounds running tasks", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ concurrency: 3 });
  let running = 0;
  let peak = 0;
  const work = actor(
    async () => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running -= 1;
    },
    { broker: fixture.broker, actorName: "work" },
  );

  try {
    await fixture.worker.start();
    await Promise.all(Array.from({ length: 30 }, () => work.send()));
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();
    assert.equal(peak, 3);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("priority orders fetched messages", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ concurrency: 1, queuePrefetch: 10 });
  const order: string[] = [];
  let unblock: () => void = () => {};
  const blocker = actor(() => new Promise<void>((resolve) => (unblock = resolve)), { broker: fixture.broker, actorName: "blocker" });
  const low = actor(() => void order.push("low"), { broker: fixture.broker, actorName: "low", priority: 10 });
  const high = actor(() => void order.push("high"), { broker: fixture.broker, actorName: "high", priority: 0 });

  try {
    await fixture.worker.start();
    await blocker.send();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await low.send();
    await high.send();
    await new Promise((resolve) => setTimeout(resolve, 20));
    unblock();
    await fixture.broker.join("default", { timeout: 5000 });
    await fixture.worker.join();
    assert.deepEqual(order, ["high", "low"]);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("stop requeues unstarted messages", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ concurrency: 1, queuePrefetch: 4 });
  let started = 0;
  const slow = actor(
    async () => {
      started += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
    },
    { broker: fixture.broker, actorName: "slow" },
  );

  try {
    await fixture.worker.start();
    await Promise.all(Array.from({ length: 6 }, () => slow.send()));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await fixture.worker.stop();

    assert.equal(started, 1);
    assert.equal(fixture.broker.queue("default").bodies.length, 5);
    assert.equal(fixture.broker.deadLetters.length, 0);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});
