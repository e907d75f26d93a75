/**
 * End to end on Redis: the example Express app as its own process enqueues
 * orders on the real Redis server at 127.0.0.1:6379, and the compiled
 * `melodramatiq` CLI, as another process, runs them. The app and the worker
 * select RedisBroker through `DRAMATIQ_BROKER_*` environment variables only.
 * Every request must become exactly one finished task that saw the app
 * through currentApp(), and SIGTERM must stop the CLI with code 0. The
 * namespace's keys are deleted afterwards.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { adminClient, deleteNamespace, namespaceKeys, REDIS_URL, uniqueNamespace } from "../brokers/redis/helpers.js";
import { READY_LINE, readLines, REPO_ROOT, startNode, waitFor, type CliRun } from "../cli/cli-process.js";

const REQUESTS = 200;
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

/** Sends `count` orders with at most `parallel` requests in flight; returns the order ids. */
async function sendOrders(baseUrl: string, count: number, parallel: number): Promise<string[]> {
  const orderIds: string[] = [];
  let next = 0;
  const sendOne = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const response = await fetch(`${baseUrl}/orders`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ item: `item-${index}`, quantity: (index % 5) + 1 }),
      });
      assert.equal(response.status, 202, await response.clone().text());
      const body = (await response.json()) as { orderId: string };
      orderIds.push(body.orderId);
    }
  };
  await Promise.all(Array.from({ length: parallel }, sendOne));
  return orderIds;
}

test("example app orders run once in CLI worker on Redis", { timeout: 120_000 }, async () => {
  const cliBin = join(REPO_ROOT, "dist", "cli", "bin.js");
  assert.ok(existsSync(cliBin), "dist/cli/bin.js is missing: run `npm run build` (npm test does it first).");

  const server = startNode(["--import", "tsx", "examples/express-app/server.ts"], { env: environment, hardTimeoutMs: 110_000 });
  started.push(server);
  const worker = startNode([cliBin, "examples/express-app/worker.ts", "-p", "2", "-t", "4"], {
    env: environment,
    hardTimeoutMs: 110_000,
  });
  started.push(worker);

  const listening = await waitFor(() => /Listening on (http:\/\/127\.0\.0\.1:\d+)/.test(server.stdout()), "the app to listen", 30_000).then(
    () => /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout()),
  );
  const baseUrl = listening?.[1];
  assert.ok(baseUrl !== undefined);
  await worker.waitForStderrCount(READY_LINE, 2, 30_000);

  const orderIds = await sendOrders(baseUrl, REQUESTS, 20);
  assert.equal(new Set(orderIds).size, REQUESTS);

  await waitFor(() => readLines(orderLogPath).length >= REQUESTS, `${REQUESTS} finished orders in ${orderLogPath}`, 60_000);
  // Give a duplicate delivery, if there were one, time to show up before counting.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const finished = readLines(orderLogPath).map((line) => JSON.parse(line) as { orderId: string; appName: string; workerPid: number });
  assert.equal(finished.length, REQUESTS);
  assert.deepEqual(new Set(finished.map((order) => order.orderId)), new Set(orderIds));
  for (const order of finished) {
    assert.equal(order.appName, "e2e-orders-redis");
    assert.notEqual(order.workerPid, server.pid);
  }

  const response = await fetch(`${baseUrl}/orders`);
  assert.equal(((await response.json()) as unknown[]).length, REQUESTS);

  worker.signal("SIGTERM");
  const exit = await worker.waitForExit(30_000);
  assert.deepEqual(exit, { code: 0, signal: null }, worker.stderr());

  server.signal("SIGTERM");
  await server.waitForExit(30_000);

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
