/**
 * Graceful shutdown of a CLI worker process on Redis under load: prefetched
 * messages go back to the queue, running ones finish (or, after the
 * shutdown timeout or a second SIGTERM, are delivered again), and no acks
 * set is left behind.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { RedisBroker } from "../../src/brokers/redis/index.js";
import { EXIT_KILLED, EXIT_OK } from "../../src/cli/exit-codes.js";
import { Message } from "../../src/message/message.js";
import { adminClient, deleteNamespace, namespaceKeys } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { assertCleanStop, runLeftovers, sendLoad, startApp, type ShutdownTarget } from "./shutdown-scenario.js";
import { sleep, uniqueName } from "./support.js";

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

function redisTarget(): ShutdownTarget & { acksSets(): Promise<string[]> } {
  const namespace = uniqueName("stop");
  namespaces.push(namespace);
  const queueName = "ft_stop";

  const read = async (name: string): Promise<Message[]> => {
    const ids = await admin.lrange(`${namespace}:${name}`, 0, -1);
    const bodies = await Promise.all(ids.map((id) => admin.hgetBuffer(`${namespace}:${name}.msgs`, id)));
    return bodies.map((body) => Message.decode(body!));
  };

  return {
    env: { FT_BROKER: "redis", FT_NAMESPACE: namespace, FT_QUEUE: queueName },
    queueName,
    // A short heartbeat timeout and maintenance on every call, so the broker
    // that runs the leftovers takes a killed worker's messages back within a second.
    createBroker: () => new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 1000, maintenanceChance: 1_000_000 }),
    waiting: () => read(queueName),
    delayed: () => read(`${queueName}.DQ`),
    deadLettered: () => admin.zcard(`${namespace}:${queueName}.XQ`),
    acksSets: async () => (await namespaceKeys(admin, namespace)).filter((key) => key.startsWith(`${namespace}:__acks__.`)),
  };
}

test("Redis SIGTERM under load loses nothing", async (t) => {
  const target = redisTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target);

  await sleep(1000);
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  await assertCleanStop(target, app, sent);
  assert.deepEqual(await target.acksSets(), [], "no acks set is left");
});

test("Redis second SIGTERM exits 1, redelivers", async (t) => {
  const target = redisTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target);

  await sleep(1000);
  app.run.signal("SIGTERM");
  await sleep(500);
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
  assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks were cut short");

  const runs = await runLeftovers(target, sent);
  assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each of the 10 messages ran once afterwards");
  assert.deepEqual(await target.acksSets(), [], "the killed worker's acks sets were recovered");
});

test("Redis shutdown timeout leaves tasks unacked", async (t) => {
  const target = redisTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target, ["--worker-shutdown-timeout", "1000"]);

  // Stopping right away leaves the 3 s tasks 2 s past the timeout.
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  assert.match(app.run.stderr(), /did not finish within the shutdown timeout/);
  assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks did not finish");
  assert.deepEqual(
    (await target.waiting()).map((message) => message.messageId).sort(),
    sent.map((message) => message.messageId).sort(),
    "all 10 messages, the unfinished ones included, are back in the queue",
  );
  assert.deepEqual(await target.delayed(), []);
  assert.deepEqual(await target.acksSets(), [], "no acks set is left");

  const runs = await runLeftovers(target, sent);
  assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each message ran once afterwards");
});
