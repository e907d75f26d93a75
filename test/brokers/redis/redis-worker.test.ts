/** Worker end to end on the real Redis broker. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../../src/actor.js";
import { RedisBroker, type RedisBrokerOptions } from "../../../src/brokers/redis/index.js";
import { Message } from "../../../src/message/message.js";
import { currentMessage } from "../../../src/worker/context.js";
import { Worker, type WorkerOptions } from "../../../src/worker/worker.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { adminClient, deleteNamespace, REDIS_URL, uniqueNamespace, waitFor } from "./helpers.js";

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

interface Fixture {
  broker: RedisBroker;
  worker: Worker;
  stop: () => Promise<void>;
}

function newBroker(namespace: string, options: RedisBrokerOptions = {}): RedisBroker {
  if (!namespaces.includes(namespace)) {
    namespaces.push(namespace);
  }
  return new RedisBroker({ url: REDIS_URL, namespace, ...options });
}

function fixture(broker: RedisBroker, options: WorkerOptions = {}): Fixture {
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000, ...options });
  return {
    broker,
    worker,
    stop: async () => {
      await worker.stop();
      await broker.close();
    },
  };
}

test("worker processes each send once", async () => {
  const { broker, worker, stop } = fixture(newBroker(uniqueNamespace("worker-once")));
  const calls: number[] = [];
  const add = actor((a: number, b: number) => calls.push(a + b), { broker, actorName: "add" });

  try {
    await worker.start();
    for (let index = 0; index < 20; index += 1) {
      await add.send(index, 1);
    }
    await broker.join("default", { timeout: 10_000 });
    await worker.join();

    assert.deepEqual(calls.sort((a, b) => a - b), Array.from({ length: 20 }, (_, index) => index + 1));
    assert.equal(await admin.exists(broker.acksKey("default")), 0, "nothing left unacked");
    assert.equal(await admin.exists(`${broker.namespace}:default.msgs`), 0);
  } finally {
    await stop();
  }
});

test("worker releases delayed send from delay queue", async () => {
  const { broker, worker, stop } = fixture(newBroker(uniqueNamespace("worker-delay")));
  const seen: { options: Record<string, unknown>; queueName: string }[] = [];
  const later = actor(
    () => {
      const message = currentMessage()!;
      seen.push({ options: { ...message.options }, queueName: message.queueName });
    },
    { broker, actorName: "later" },
  );

  try {
    await worker.start();
    const sent = await later.sendWithOptions({ delay: 300 });
    assert.equal(sent.queueName, "default.DQ");
    await broker.join("default", { timeout: 10_000 });
    await worker.join();

    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.queueName, "default");
    assert.equal(seen[0]!.options["eta"], undefined, "the released copy has no eta");
    assert.notEqual(seen[0]!.options["redis_message_id"], sent.options["redis_message_id"], "the released copy has a new redis_message_id");
    assert.equal(await admin.exists(`${broker.namespace}:default.DQ.msgs`), 0);
    assert.equal(await admin.exists(broker.acksKey("default.DQ")), 0);
  } finally {
    await stop();
  }
});

test("failing actor with maxRetries 0 is dead-lettered", async () => {
  const { broker, worker, stop } = fixture(newBroker(uniqueNamespace("worker-fail")));
  const boom = new Error("boom");
  const fails = actor(
    () => {
      throw boom;
    },
    { broker, actorName: "fails", maxRetries: 0 },
  );

  try {
    await worker.start();
    const sent = await fails.send();
    await assert.rejects(broker.join("default", { timeout: 10_000 }), (error: unknown) => error === boom);

    const redisMessageId = sent.options["redis_message_id"] as string;
    assert.deepEqual(await admin.zrange(`${broker.namespace}:default.XQ`, 0, -1), [redisMessageId]);
    const body = await admin.hget(`${broker.namespace}:default.XQ.msgs`, redisMessageId);
    assert.equal(Message.decode(body!).messageId, sent.messageId);
    assert.equal(await admin.exists(`${broker.namespace}:default.msgs`), 0);
    assert.equal(await admin.exists(broker.acksKey("default")), 0);
  } finally {
    await stop();
  }
});

test("retried message goes through delay queue", async () => {
  const { broker, worker, stop } = fixture(newBroker(uniqueNamespace("worker-retry")));
  const attempts: unknown[] = [];
  const flaky = actor(
    () => {
      attempts.push(currentMessage()!.options["retries"]);
      if (attempts.length === 1) {
        throw new Error("first attempt fails");
      }
    },
    { broker, actorName: "flaky", maxRetries: 3, minBackoff: 10, maxBackoff: 50 },
  );

  try {
    await worker.start();
    await flaky.send();
    await waitFor("second attempt", () => attempts.length === 2);
    await broker.join("default", { timeout: 10_000 });
    assert.deepEqual(attempts, [undefined, 1]);
  } finally {
    await stop();
  }
});

test("graceful stop returns prefetched messages", async () => {
  const { broker, worker, stop } = fixture(newBroker(uniqueNamespace("worker-stop")), { concurrency: 1, queuePrefetch: 4 });
  const ns = broker.namespace;
  let release: () => void = () => undefined;
  const started: number[] = [];
  const slow = actor(
    async (index: number) => {
      started.push(index);
      if (index === 0) {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      }
    },
    { broker, actorName: "slow" },
  );

  try {
    for (let index = 0; index < 8; index += 1) {
      await slow.send(index);
    }
    await slow.sendWithOptions({ args: [99], delay: 60_000 });
    await worker.start();
    await waitFor("first message running and prefetch full", async () => started.length === 1 && (await admin.scard(broker.acksKey("default"))) === 4);
    await waitFor("delayed message held", async () => (await admin.scard(broker.acksKey("default.DQ"))) === 1);

    const stopping = worker.stop();
    await waitFor("prefetched messages requeued", async () => (await admin.llen(`${ns}:default`)) === 7);
    release();
    await stopping;
    await broker.close();

    assert.deepEqual(started, [0], "no message started after the stop");
    assert.equal(await admin.exists(broker.acksKey("default")), 0, "no acks set left for the queue");
    assert.equal(await admin.exists(broker.acksKey("default.DQ")), 0, "no acks set left for the delay queue");
    assert.equal(await admin.hlen(`${ns}:default.msgs`), 7);
    const waiting = await admin.lrange(`${ns}:default`, 0, -1);
    const bodies = await Promise.all(waiting.map(async (id) => Message.decode((await admin.hget(`${ns}:default.msgs`, id))!).args[0]));
    assert.deepEqual(bodies.slice(0, 4), [4, 5, 6, 7], "messages never fetched stay at the head");
    assert.deepEqual(bodies.slice(4).sort(), [1, 2, 3], "returned messages go to the tail");
    assert.equal(await admin.llen(`${ns}:default.DQ`), 1, "the held delayed message is back in the delay queue");
  } finally {
    release();
    await stop();
  }
});

test("three workers process 300 messages once each", async () => {
  const namespace = uniqueNamespace("worker-many");
  const counts = new Map<number, number>();
  const fixtures = [0, 1, 2].map(() => {
    const current = fixture(newBroker(namespace, { maintenanceChance: 100_000 }), { concurrency: 4 });
    actor(
      async (index: number) => {
        counts.set(index, (counts.get(index) ?? 0) + 1);
        await new Promise((resolve) => setImmediate(resolve));
      },
      { broker: current.broker, actorName: "work" },
    );
    return current;
  });
  const producer = fixtures[0]!.broker;

  try {
    for (const { worker } of fixtures) {
      await worker.start();
    }
    const work = producer.actors.get("work")!;
    for (let index = 0; index < 300; index += 1) {
      await work.send(index);
    }

    await waitFor("300 messages processed", () => counts.size === 300, 30_000);
    await producer.join("default", { timeout: 10_000 });
    for (const { worker } of fixtures) {
      await worker.join();
    }

    const duplicates = [...counts].filter(([, count]) => count !== 1);
    assert.deepEqual(duplicates, [], "every message ran exactly once");
  } finally {
    for (const current of fixtures) {
      await current.stop();
    }
  }
});
