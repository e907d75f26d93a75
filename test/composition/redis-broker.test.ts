/** Pipelines and groups on the real Redis broker, with Redis results and barriers, as groups.json was captured. */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { group, pipeline } from "../../src/composition/index.js";
import type { MessageOptions } from "../../src/message/message.js";
import { defaultMiddleware } from "../../src/middleware/defaults.js";
import { GroupCallbacks } from "../../src/middleware/group-callbacks.js";
import { RedisRateLimiterBackend } from "../../src/rate-limits/backends/redis.js";
import { RedisBackend } from "../../src/results/backends/redis.js";
import { Results } from "../../src/results/index.js";
import { Worker } from "../../src/worker/worker.js";
import { adminClient, deleteNamespace, REDIS_URL, uniqueNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { loadVector } from "../helpers/vectors.js";
import { EnqueueRecorder } from "./support.js";

interface GroupsVector {
  enqueued_by_run: { decoded: { options: MessageOptions } }[];
  barrier_keys_after_completion: Record<string, { type: string; value: unknown }>;
  group_results: unknown[];
}

const groupsVector = loadVector("groups.json") as GroupsVector;

let admin: Redis;
let logs: LogCapture;

before(async () => {
  logs = captureLogs();
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  await admin.quit();
  logs.restore();
});

interface RedisFixture {
  broker: RedisBroker;
  worker: Worker;
  recorder: EnqueueRecorder;
  /** Returns a barrier key this test alone uses, deleted by `stop()`. */
  newCompletionId(): string;
  stop(): Promise<void>;
}

function createFixture(label: string): RedisFixture {
  const namespace = uniqueNamespace(label);
  const resultsNamespace = `${namespace}-results`;
  const results = new RedisBackend({ url: REDIS_URL, namespace: resultsNamespace, useNamespacePrefixKeys: true });
  const barriers = new RedisRateLimiterBackend({ url: REDIS_URL });
  const recorder = new EnqueueRecorder();
  const broker = new RedisBroker({
    url: REDIS_URL,
    namespace,
    middleware: [...defaultMiddleware(), new Results({ backend: results, storeResults: true }), new GroupCallbacks({ backend: barriers }), recorder],
  });
  const worker = new Worker(broker, { concurrency: 4, shutdownTimeout: 5000 });
  const completionIds: string[] = [];

  return {
    broker,
    worker,
    recorder,
    newCompletionId: () => {
      const id = `melotest-group-${randomUUID()}`;
      completionIds.push(id);
      return id;
    },
    stop: async () => {
      await worker.stop();
      await broker.close();
      await deleteNamespace(admin, namespace);
      await deleteNamespace(admin, resultsNamespace);
      for (const id of completionIds) {
        await admin.del(id, `${id}@events`);
      }
      await results.close();
      await barriers.close();
    },
  };
}

test("pipeline runs on Redis broker", async () => {
  const fixture = createFixture("pipeline");
  const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });

  try {
    await fixture.worker.start();
    const chain = await pipeline([add.message(1, 2), add.message(3), add.message(4)], { broker: fixture.broker }).run();

    assert.deepEqual(await chain.getResults({ block: true, timeout: 10_000 }), [3, 6, 10]);
    const [first] = fixture.recorder.enqueued;
    assert.equal(typeof first?.options["redis_message_id"], "string", "the Redis broker stamped the first step");
    assert.equal(
      (first?.options["pipe_target"] as MessageOptions)["redis_message_id"],
      undefined,
      "later steps get their own redis_message_id when enqueued, not before",
    );
  } finally {
    await fixture.stop();
  }
});

test("group runs on Redis broker like groups.json", async () => {
  const fixture = createFixture("group");
  const calls: string[] = [];
  const square = actor((n: number) => n * n, { broker: fixture.broker, actorName: "square" });
  const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });
  const finished = actor(
    (label: string) => {
      calls.push(label);
    },
    { broker: fixture.broker, actorName: "finished" },
  );
  const completionId = fixture.newCompletionId();

  try {
    await fixture.worker.start();
    const work = group([square.message(2), square.message(3), pipeline([square.message(4), add.message(1)])], { broker: fixture.broker });
    work.addCompletionCallback(finished.message("group-done"));
    await work.run({ completionId });

    assert.deepEqual(await work.getResults({ block: true, timeout: 10_000 }), groupsVector.group_results);
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();
    assert.deepEqual(calls, ["group-done"]);

    const children = fixture.recorder.enqueued.slice(0, 3);
    children.forEach((child, index) => {
      const expected = groupsVector.enqueued_by_run[index]?.decoded.options ?? {};
      assert.deepEqual(Object.keys(child.options), Object.keys(expected), `option order of child ${index}`);
    });
    const nested = children[2]?.options["pipe_target"] as { options: MessageOptions };
    const expectedNested = groupsVector.enqueued_by_run[2]?.decoded.options["pipe_target"] as { options: MessageOptions };
    assert.deepEqual(Object.keys(nested.options), Object.keys(expectedNested.options));
    assert.equal(nested.options["group_completion_uuid"], completionId);

    const vectorKeys = Object.entries(groupsVector.barrier_keys_after_completion);
    const counter = vectorKeys.find(([key]) => !key.endsWith("@events"))?.[1];
    const events = vectorKeys.find(([key]) => key.endsWith("@events"))?.[1];
    assert.equal(await admin.type(completionId), counter?.type);
    assert.equal(await admin.get(completionId), counter?.value);
    assert.equal(await admin.type(`${completionId}@events`), events?.type);
    assert.deepEqual(await admin.lrange(`${completionId}@events`, 0, -1), events?.value);
  } finally {
    await fixture.stop();
  }
});
