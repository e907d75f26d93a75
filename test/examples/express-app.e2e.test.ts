/**
 * End to end: the example Express app as its own process enqueues orders on
 * the real RabbitMQ, and the compiled `melodramatiq` CLI, as another process,
 * runs them. Every request must become exactly one finished task that saw
 * the app through currentApp(), and SIGTERM must stop the CLI with code 0.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { connect } from "amqplib";

import { READY_LINE, readLines, REPO_ROOT, startNode, waitFor, type CliRun } from "../cli/cli-process.js";

const REQUESTS = 200;
const queueName = `e2e_orders_${randomUUID().slice(0, 8)}`;
const workDirectory = mkdtempSync(join(tmpdir(), "melodramatiq-e2e-"));
const orderLogPath = join(workDirectory, "orders.jsonl");
const environment = {
  ORDERS_QUEUE: queueName,
  ORDER_LOG_PATH: orderLogPath,
  APP_NAME: "e2e-orders",
  DRAMATIQ_BROKER_CLASS: "RabbitmqBroker",
  DRAMATIQ_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672",
  PORT: "0",
};
const started: CliRun[] = [];

after(async () => {
  for (const run of started) {
    run.killGroup();
  }

  const connection = await connect("amqp://guest:guest@127.0.0.1:5672");
  const channel = await connection.createChannel();
  for (const name of [queueName, `${queueName}.DQ`, `${queueName}.XQ`]) {
    await channel.deleteQueue(name);
  }
  await connection.close();
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

test("example app orders run once in CLI worker", { timeout: 120_000 }, async () => {
  const cliBin = join(REPO_ROOT, "dist", "cli", "bin.js");
  assert.ok(existsSync(cliBin), "dist/cli/bin.js is missing: run `npm run build` (npm test does it first).");

  const server = startNode(["--import", "tsx", "examples/express-app/server.ts"], { env: environment, hardTimeoutMs: 110_000 });
  started.push(server);
  const worker = startNode([cliBin, "examples/express-app/worker.ts", "--processes", "2", "--threads", "4"], {
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
    assert.equal(order.appName, "e2e-orders");
    assert.notEqual(order.workerPid, server.pid);
  }

  const response = await fetch(`${baseUrl}/orders`);
  assert.equal(((await response.json()) as unknown[]).length, REQUESTS);

  worker.signal("SIGTERM");
  const exit = await worker.waitForExit(30_000);
  assert.deepEqual(exit, { code: 0, signal: null }, worker.stderr());

  server.signal("SIGTERM");
  await server.waitForExit(30_000);
});
