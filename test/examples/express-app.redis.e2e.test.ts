/**
 * End to end on Redis: the example app and the compiled CLI as separate
 * processes (see order-scenario.ts for what is checked), selecting
 * RedisBroker through `DRAMATIQ_BROKER_*` environment variables only. The
 * namespace's keys are deleted afterwards.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { adminClient, deleteNamespace, namespaceKeys, REDIS_URL, uniqueNamespace } from "../brokers/redis/helpers.js";
import type { CliRun } from "../cli/cli-process.js";
import { runOrderScenario } from "./order-scenario.js";

const queueName = `e2e_orders_${randomUUID().slice(0, 8)}`;
const namespace = uniqueNamespace("e2e-express");
const workDirectory = mkdtempSync(join(tmpdir(), "melodramatiq-e2e-redis-"));
const orderLogPath = join(workDirectory, "orders.jsonl");
const environment = {
  ORDERS_QUEUE: queueName,
  ORDER_LOG_PATH: orderLogPath,
  APP_NAME: "e2e-orders-redis",
  DRAMATIQ_BROKER_CLASS: "RedisBroker",
  DRAMATIQ_BROKER_URL: REDIS_URL,
  DRAMATIQ_BROKER_NAMESPACE: namespace,
  PORT: "0",
};
const started: CliRun[] = [];

after(async () => {
  for (const run of started) {
    run.killGroup();
  }

  const admin = adminClient();
  try {
    await admin.connect();
    await deleteNamespace(admin, namespace);
  } finally {
    admin.disconnect();
  }
  rmSync(workDirectory, { recursive: true, force: true });
});

test("example app orders run once in CLI worker on Redis", { timeout: 120_000 }, async () => {
  await runOrderScenario({ environment, orderLogPath, requests: 200, started });

  // The orders went through this namespace, and the drained queue and clean stops left none of their keys.
  const admin = adminClient();
  try {
    await admin.connect();
    const keys = await namespaceKeys(admin, namespace);
    assert.deepEqual(keys, [`${namespace}:__heartbeats__`], "only the heartbeat key is left once the queue is drained and the workers stopped");
    assert.equal(await admin.zcard(`${namespace}:__heartbeats__`), 3, "the web process and both worker processes wrote a heartbeat in the namespace");
  } finally {
    admin.disconnect();
  }
});
