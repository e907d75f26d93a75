/**
 * TimeLimit on the real Redis broker: hanging tasks are dead-lettered in
 * `<ns>:<q>.XQ`, nothing stays in the acks set, and the worker's slots
 * survive for later messages.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { Message } from "../../src/message/message.js";
import { AgeLimit } from "../../src/middleware/age-limit.js";
import { Retries } from "../../src/middleware/retries.js";
import { ShutdownNotifications } from "../../src/middleware/shutdown-notifications.js";
import { TimeLimit } from "../../src/middleware/time-limit.js";
import { Worker } from "../../src/worker/worker.js";
import { adminClient, deleteNamespace, REDIS_URL, uniqueNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { never, sleep, spin, waitFor } from "./wait.js";

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

function newBroker(label: string): RedisBroker {
  const namespace = uniqueNamespace(label);
  namespaces.push(namespace);
  return new RedisBroker({
    url: REDIS_URL,
    namespace,
    middleware: [new AgeLimit(), new TimeLimit(), new ShutdownNotifications(), new Retries()],
  });
}

test("redis time limit fails hanging tasks and keeps slots", async () => {
  const broker = newBroker("time-limit");
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  let quickDone = 0;
  const hang = actor(() => never(), { broker, actorName: "hang", timeLimit: 200, maxRetries: 0 });
  const quick = actor(
    async () => {
      await sleep(10);
      quickDone += 1;
    },
    { broker, actorName: "quick" },
  );

  try {
    await worker.start();
    for (let index = 0; index < 20; index += 1) {
      await hang.send();
    }
    for (let index = 0; index < 5; index += 1) {
      await quick.send();
    }

    await waitFor("5 quick messages done", () => quickDone === 5, 15_000);
    await waitFor("20 hanging messages dead-lettered", async () => (await admin.zcard(`${broker.namespace}:default.XQ`)) === 20, 15_000);
    await waitFor("no slot held", () => worker.activeTasks === 0);
    assert.equal(await admin.scard(broker.acksKey("default")), 0, "nothing left unacked");

    const bodies = await admin.hvals(`${broker.namespace}:default.XQ.msgs`);
    assert.equal(bodies.length, 20);
    assert.ok(bodies.every((body) => Message.decode(body).actorName === "hang"));

    // The pool did not shrink: a fresh message still runs.
    await quick.send();
    await waitFor("fresh quick message done", () => quickDone === 6, 5000);
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("redis sync spin past limit is dead-lettered", async () => {
  const broker = newBroker("time-limit-spin");
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  let quickDone = 0;
  const busy = actor(
    () => {
      spin(600);
    },
    { broker, actorName: "busy", timeLimit: 200, maxRetries: 0 },
  );
  const quick = actor(
    () => {
      quickDone += 1;
    },
    { broker, actorName: "quick" },
  );

  try {
    await worker.start();
    const sent = await busy.send();
    await waitFor("spinning message dead-lettered", async () => (await admin.zcard(`${broker.namespace}:default.XQ`)) === 1, 10_000);
    const body = await admin.hvals(`${broker.namespace}:default.XQ.msgs`);
    assert.equal(Message.decode(body[0] ?? "").messageId, sent.messageId);

    await quick.send();
    await waitFor("quick message after the spin", () => quickDone === 1, 5000);
  } finally {
    await worker.stop();
    await broker.close();
  }
});
