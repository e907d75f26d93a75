/**
 * A worker whose event loop is blocked by a long synchronous task: on Redis
 * its heartbeat must stay fresh, so other workers do not take its unacked
 * messages, and the loop watchdog must name the task that blocks.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { TimerLoopWatchdog } from "../../src/worker/loop-watchdog.js";
import { Worker } from "../../src/worker/worker.js";
import { adminClient, deleteNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { sleep, spawnFixture, uniqueName, waitFor } from "./support.js";

let admin: Redis;
let logs: LogCapture;
const namespaces: string[] = [];

before(async () => {
  logs = captureLogs();
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  await admin.quit();
  logs.restore();
});

/** Blocks the event loop of this process for `ms` milliseconds. */
function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Busy loop.
  }
}

test("blocked worker keeps its Redis message", async () => {
  const namespace = uniqueName("busy");
  namespaces.push(namespace);
  const queueName = "ft_busy";
  const options = { url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 2000 };
  const child = spawnFixture("child-worker.ts", {
    env: { FT_BROKER: "redis", FT_NAMESPACE: namespace, FT_QUEUE: queueName, FT_HEARTBEAT_TIMEOUT: "2000", FT_MAINTENANCE_CHANCE: "0" },
  });

  // The other worker runs maintenance on every fetch, so it requeues the
  // busy worker's message as soon as that worker's heartbeat is 2 s old.
  const other = new RedisBroker({ ...options, maintenanceChance: 1_000_000 });
  const otherWorker = new Worker(other, { concurrency: 1, shutdownTimeout: 5000 });
  const stolen: string[] = [];
  const task = actor(
    (label: string, _ms: number, _mode: "sleep" | "spin") => {
      stolen.push(label);
    },
    { broker: other, actorName: "task", queueName, maxRetries: 0 },
  );

  try {
    await child.waitForEvent("the child worker to be ready", (event) => event.event === "ready");
    const sent = await task.send("spin", 5000, "spin");
    await child.waitForEvent("the busy task to start", (event) => event.event === "started");
    await otherWorker.start();

    await child.waitForEvent("the busy task to finish", (event) => event.event === "finished", 30_000);
    await waitFor("the busy task's ack", async () => (await admin.hlen(`${namespace}:${queueName}.msgs`)) === 0);

    assert.deepEqual(stolen, [], "the other worker never ran the busy worker's message");
    assert.equal(child.events.filter((event) => event.event === "started").length, 1, "the message ran once");

    const warnings = child.stderr().split("\n").filter((line) => line.includes("event loop") && line.includes("blocked"));
    assert.equal(warnings.length, 1, `one watchdog warning for the stall:\n${child.stderr()}`);
    assert.match(warnings[0]!, /\[WARNING\]/);
    assert.match(warnings[0]!, /task/, "the warning names the actor");
    assert.ok(warnings[0]!.includes(sent.messageId), "the warning names the message id");
  } finally {
    child.process.stdin.end();
    await child.waitForExit().catch(() => {
      child.kill();
    });
    await otherWorker.stop();
    await other.close();
  }
});

for (const thread of [false, true]) {
  test(`watchdog ${thread ? "thread" : "timer"} names the blocking actor once`, async () => {
    const broker = new StubBroker();
    const worker = new Worker(broker, { concurrency: 2, eventLoopBlockThreshold: 300, eventLoopWatchdogThread: thread });
    const finished: string[] = [];
    const blocking = actor(
      (label: string) => {
        spin(1200);
        finished.push(label);
      },
      { broker, actorName: `blocking_report_${thread}` },
    );
    const waiting = actor(
      async (label: string) => {
        await sleep(3000);
        finished.push(label);
      },
      { broker, actorName: `waiting_report_${thread}` },
    );
    logs.records.length = 0;

    try {
      await worker.start();
      const slow = await waiting.send("waiting");
      await waitFor("the waiting task to start", () => worker.activeTasks === 1);
      const blocked = await blocking.send("blocking");
      await waitFor("both tasks to finish", () => finished.length === 2);

      const warnings = logs.find("warn", thread ? "The event loop has been blocked" : "The event loop was blocked");
      assert.equal(warnings.length, 1, "one warning per stall");
      const [warning] = warnings;
      assert.ok(warning!.message.includes(`actor 'blocking_report_${thread}'`), warning!.message);
      assert.ok(warning!.message.includes(blocked.messageId), "the warning names the blocking message");
      assert.ok(warning!.message.includes(`actor 'waiting_report_${thread}'`), "every running task is listed");
      assert.ok(warning!.message.includes(slow.messageId));
      assert.ok(Number(warning!.fields["blockedFor"]) > 300, "the warning says how long the loop was blocked");
    } finally {
      await worker.stop();
      await broker.close();
    }
  });
}

test("watchdog stays quiet for async tasks", async () => {
  const broker = new StubBroker();
  const worker = new Worker(broker, { concurrency: 4 });
  let done = 0;
  const pause = actor(
    async () => {
      await sleep(200);
      done += 1;
    },
    { broker, actorName: "pause_quiet" },
  );
  logs.records.length = 0;

  try {
    await worker.start();
    for (let index = 0; index < 12; index += 1) {
      await pause.send();
    }
    await waitFor("twelve tasks", () => done === 12);

    assert.deepEqual(logs.find("warn", "event loop"), []);
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("the default watchdog is a main-thread timer", async () => {
  const broker = new StubBroker();
  const worker = new Worker(broker, { concurrency: 1 });
  try {
    await worker.start();
    // No thread means no second V8 isolate, which a worker process could not afford under its memory target.
    assert.ok((worker as unknown as { watchdog: unknown }).watchdog instanceof TimerLoopWatchdog);
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("eventLoopBlockThreshold is validated", () => {
  const broker = new StubBroker();
  assert.throws(() => new Worker(broker, { eventLoopWatchdogThread: "yes" as unknown as boolean }), /eventLoopWatchdogThread=yes/);
  assert.throws(() => new Worker(broker, { eventLoopBlockThreshold: -1 }), ConfigurationError);
  assert.throws(() => new Worker(broker, { eventLoopBlockThreshold: Number.NaN }), /eventLoopBlockThreshold=NaN/);
});

test("watchdog off at threshold 0", async () => {
  const broker = new StubBroker();
  const worker = new Worker(broker, { concurrency: 1, eventLoopBlockThreshold: 0 });
  let ran = false;
  const blocking = actor(
    () => {
      spin(1200);
      ran = true;
    },
    { broker, actorName: "blocking_unwatched" },
  );
  logs.records.length = 0;

  try {
    await worker.start();
    await blocking.send();
    await waitFor("the blocking task", () => ran);
    await sleep(100);

    assert.deepEqual(logs.find("warn", "event loop"), []);
  } finally {
    await worker.stop();
    await broker.close();
  }
});

/** Starts a consumer on `broker`, which starts its heartbeat, and returns the heartbeat key. */
async function startHeartbeat(broker: RedisBroker): Promise<{ key: string; stop(): Promise<void> }> {
  const consumer = broker.consume("ft_heartbeat", { prefetch: 1 });
  await consumer.start(() => undefined);
  return {
    key: `${broker.namespace}:__heartbeats__`,
    stop: () => consumer.close(),
  };
}

test("heartbeat thread refreshes during a block", async () => {
  const namespace = uniqueName("beat");
  namespaces.push(namespace);
  const external = new Redis("redis://127.0.0.1:6379/0", { lazyConnect: true });
  // With an external client, the thread copies that client's connection options.
  for (const broker of [
    new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 400 }),
    new RedisBroker({ client: external, namespace, heartbeatTimeout: 400 }),
  ]) {
    const heartbeat = await startHeartbeat(broker);
    try {
      await waitFor("the heartbeat thread's first refresh", async () => (await admin.zscore(heartbeat.key, broker.brokerId)) !== null);
      await sleep(300);
      const before = Date.now();
      spin(1500);

      // The main thread did nothing during the block, so only the thread wrote this score.
      const score = Number(await admin.zscore(heartbeat.key, broker.brokerId));
      assert.ok(score > before, `the heartbeat moved during the block (score ${score}, block started at ${before})`);
    } finally {
      await heartbeat.stop();
      await broker.close();
    }
  }
  await external.quit();
});

test("heartbeat thread stops on close", async () => {
  const namespace = uniqueName("beatstop");
  namespaces.push(namespace);
  const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 200 });
  const heartbeat = await startHeartbeat(broker);
  await waitFor("a heartbeat", async () => (await admin.zscore(heartbeat.key, broker.brokerId)) !== null);

  await heartbeat.stop();
  await broker.close();
  await sleep(100);
  const last = await admin.zscore(heartbeat.key, broker.brokerId);
  await sleep(500);

  assert.equal(await admin.zscore(heartbeat.key, broker.brokerId), last, "no refresh after close");
});

test("heartbeat falls back to the main thread", async () => {
  const namespace = uniqueName("beatfallback");
  namespaces.push(namespace);
  // A value that structuredClone rejects keeps the connection options from reaching a thread.
  // The built-in client rejects unknown options, so the value rides on the options of an ioredis client passed in.
  const external = new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: true, connectionName: "ft-fallback" });
  (external.options as Record<string, unknown>)["uncloneable"] = Symbol("not cloneable");
  const broker = new RedisBroker({ client: external, namespace, heartbeatTimeout: 200 });
  const key = `${namespace}:__heartbeats__`;
  await broker.enqueue(new Message({ queueName: "ft_heartbeat", actorName: "held", args: [] }));
  logs.records.length = 0;

  // With its only delivery unacked, the consumer stops fetching, so only a timer refreshes the heartbeat.
  const consumer = broker.consume("ft_heartbeat", { prefetch: 1 });
  let delivered = false;
  await consumer.start(() => {
    delivered = true;
  });

  try {
    const warnings = logs.find("warn", `Failed to start the heartbeat thread of broker ${broker.brokerId}`);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /cannot be copied to a thread/);

    await waitFor("the delivery", () => delivered);
    const first = Number(await admin.zscore(key, broker.brokerId));
    await waitFor("the main-thread timer to refresh the heartbeat", async () => Number(await admin.zscore(key, broker.brokerId)) > first);
  } finally {
    await consumer.close();
    await broker.close();
    await external.quit();
  }
});
