/**
 * Lazy brokers on the real Redis server at 127.0.0.1:6379: a lazy
 * RedisBroker, and a lazy Broker that `DRAMATIQ_BROKER_CLASS=RedisBroker`
 * turns into one, each run a task on a Worker, and the task reads the app
 * through currentApp(). A password in the URL must not reach any log line or
 * error.
 * Every test uses its own namespace, whose keys are deleted afterwards.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import express from "express";
import type { Redis } from "ioredis";

import { RedisBroker as EngineRedisBroker } from "../../src/brokers/redis/index.js";
import { ConnectionFailedError } from "../../src/errors.js";
import { Worker } from "../../src/worker/worker.js";
import { Broker, currentApp, RedisBroker, setBrokerSettingsFromEnv } from "../../src/web/express.js";
import { adminClient, deleteNamespace, namespaceKeys, REDIS_URL, uniqueNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogRecord } from "../helpers/logs.js";
import { runOnWorker } from "./worker-run.js";

let admin: Redis;
const namespaces: string[] = [];

before(async () => {
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  await admin.quit();
});

function newNamespace(label: string): string {
  const namespace = uniqueNamespace(label);
  namespaces.push(namespace);
  return namespace;
}

/**
 * Returns every string reachable from `value`: object fields, array items,
 * and an error's message, stack and cause, which JSON.stringify would skip.
 */
function allText(value: unknown, seen = new WeakSet<object>(), depth = 0): string {
  if (typeof value === "string") {
    return value;
  }
  if (typeof value !== "object" || value === null || seen.has(value) || depth > 8) {
    return typeof value === "number" || typeof value === "boolean" ? String(value) : "";
  }

  seen.add(value);
  const parts: string[] = [];
  if (value instanceof Error) {
    parts.push(value.name, value.message, value.stack ?? "", allText(value.cause, seen, depth + 1));
  }
  for (const key of Reflect.ownKeys(value)) {
    parts.push(String(key), allText((value as Record<PropertyKey, unknown>)[key], seen, depth + 1));
  }
  return parts.join("\n");
}

function errorLines(records: readonly LogRecord[]): string[] {
  return records.filter((record) => record.level === "error").map((record) => record.message);
}

test("lazy RedisBroker from config runs a task", async () => {
  const suffix = randomBytes(4).toString("hex");
  const prefix = `WEB_REDIS_${suffix.toUpperCase()}`;
  const namespace = newNamespace("web-lazy");
  const queueName = `web_lazy_redis_${suffix}`;
  const logs = captureLogs();

  // The URL in code is a dead port: the config key must override it.
  const broker = new RedisBroker({ configPrefix: prefix, url: "redis://127.0.0.1:1/0" });
  const results: { total: number; app: unknown }[] = [];
  const add = broker.actor(
    async function add(left: number, right: number): Promise<void> {
      await sleep(1);
      results.push({ total: left + right, app: currentApp() });
    },
    { queueName, maxRetries: 0 },
  );

  const app = {
    config: {
      [`${prefix}_URL`]: REDIS_URL,
      [`${prefix}_NAMESPACE`]: namespace,
      [`${prefix}_HEARTBEAT_TIMEOUT`]: "20000",
      [`${prefix}_MAINTENANCE_CHANCE`]: "0",
    },
  };
  broker.initApp(app);
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRedisBroker);
  assert.equal(live.namespace, namespace);
  assert.equal(live.heartbeatTimeout, 20000);
  assert.equal(live.maintenanceChance, 0);

  await runOnWorker(broker, {
    queueName,
    concurrency: 1,
    send: () => add.send(2, 3),
    done: () => results.length === 1,
    label: "the task to run on the Redis worker",
    logs,
  });

  assert.deepEqual(results, [{ total: 5, app }]);
  assert.equal(results[0]?.app, app);
  assert.deepEqual(errorLines(logs.records), [], "no error was logged");
  assert.equal(logs.find("warn", `${prefix}_URL overrides`).length, 1);
  assert.deepEqual(await namespaceKeys(admin, namespace), [`${namespace}:__heartbeats__`], "only the heartbeat key is left after a clean stop");
});

test("lazy Broker with RedisBroker class from env runs a task", async () => {
  const namespace = newNamespace("web-env");
  const queueName = `web_env_redis_${randomBytes(4).toString("hex")}`;
  const logs = captureLogs();

  // The only lazy broker of this file with the default prefix DRAMATIQ_BROKER.
  const broker = new Broker();
  const seen: { orderId: string; appName: unknown }[] = [];
  const processOrder = broker.actor(
    async function processOrder(orderId: string): Promise<void> {
      await sleep(1);
      seen.push({ orderId, appName: currentApp().get("APP_NAME") });
    },
    { queueName, maxRetries: 0 },
  );

  const app = express();
  app.set("APP_NAME", "web-redis-test");
  const env = {
    DRAMATIQ_BROKER_CLASS: "RedisBroker",
    DRAMATIQ_BROKER_URL: REDIS_URL,
    DRAMATIQ_BROKER_NAMESPACE: namespace,
    DRAMATIQ_BROKER_HEARTBEAT_TIMEOUT: "20000",
    DRAMATIQ_BROKER_DEAD_MESSAGE_TTL: "3600000",
    DRAMATIQ_BROKER_MAINTENANCE_CHANCE: "10",
    PATH: "/usr/bin",
  };
  const copied = setBrokerSettingsFromEnv(app, { env });
  assert.equal(copied.length, 6);
  broker.initApp(app);

  assert.ok(broker.liveBroker instanceof EngineRedisBroker);
  assert.ok(broker instanceof EngineRedisBroker, "the lazy Broker takes the RedisBroker prototype");
  assert.equal(broker.namespace, namespace);
  assert.equal(broker.heartbeatTimeout, 20000);
  assert.equal(broker.deadMessageTtl, 3_600_000);
  assert.equal(broker.maintenanceChance, 10);

  await runOnWorker(broker, {
    queueName,
    concurrency: 2,
    send: async () => {
      await processOrder.send("order-1");
      await processOrder.send("order-2");
    },
    done: () => seen.length === 2,
    label: "both tasks to run on the Redis worker",
    logs,
  });

  assert.deepEqual(
    [...seen].sort((left, right) => left.orderId.localeCompare(right.orderId)),
    [
      { orderId: "order-1", appName: "web-redis-test" },
      { orderId: "order-2", appName: "web-redis-test" },
    ],
  );
  assert.deepEqual(errorLines(logs.records), [], "no error was logged");
  assert.equal(logs.find("info", "as RedisBroker").length, 1, "initApp() logs the class it built");
});

test("Redis URL password stays out of logs and errors", async () => {
  const suffix = randomBytes(4).toString("hex");
  const prefix = `WEB_REDIS_AUTH_${suffix.toUpperCase()}`;
  const namespace = newNamespace("web-auth");
  const queueName = `web_auth_redis_${suffix}`;
  // Random, so that no other text in a log line or error can contain it.
  const password = `pw-${randomBytes(8).toString("hex")}`;
  const logs = captureLogs();

  const broker = new RedisBroker({ configPrefix: prefix });
  const ping = broker.actor(async function ping(): Promise<void> {}, { queueName, maxRetries: 0 });
  const errors: unknown[] = [];
  const rejectsWithoutPassword = async (promise: Promise<unknown>, operation: string): Promise<void> => {
    await assert.rejects(promise, (error: unknown) => {
      errors.push(error);
      assert.ok(error instanceof ConnectionFailedError, `${operation}: expected ConnectionFailedError, got ${String(error)}`);
      assert.match(error.message, /redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0/, `${operation}: the message names the URL with its password hidden`);
      return true;
    });
  };

  try {
    broker.initApp({ config: { [`${prefix}_URL`]: `redis://:${password}@127.0.0.1:1/0`, [`${prefix}_NAMESPACE`]: namespace } });
    assert.equal(broker.displayUrl, "redis://:***@127.0.0.1:1/0");

    await rejectsWithoutPassword(broker.connect(), "connect()");
    const worker = new Worker(broker, { concurrency: 1, queues: [queueName] });
    await rejectsWithoutPassword(worker.start(), "Worker.start()");
    // Last, because the client it leaves reconnecting would slow a later connect().
    await rejectsWithoutPassword(ping.send(), "send()");
  } finally {
    await broker.close();
    logs.restore();
  }

  assert.equal(errors.length, 3);
  assert.ok(logs.records.length > 0, "the failed connections were logged");
  for (const [index, error] of errors.entries()) {
    assert.ok(!allText(error).includes(password), `error ${index} shows the password: ${allText(error)}`);
  }
  for (const record of logs.records) {
    assert.ok(!allText(record).includes(password), `log line shows the password: ${allText(record)}`);
  }
});
