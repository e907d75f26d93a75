/**
 * The end-to-end scenario shared by the broker-specific tests: the example
 * Express app as its own process enqueues orders, and the compiled
 * `melodramatiq` CLI, as another process, runs them. Every request must
 * become exactly one finished task that saw the app through currentApp(),
 * and SIGTERM must stop the CLI with code 0.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";

import { READY_LINE, readLines, REPO_ROOT, startNode, waitFor, type CliRun } from "../cli/cli-process.js";

export interface OrderScenario {
  /** Environment of both processes: broker settings, ORDERS_QUEUE, ORDER_LOG_PATH, APP_NAME. */
  readonly environment: Record<string, string>;
  /** Path of the JSON-lines file the actor appends finished orders to. */
  readonly orderLogPath: string;
  /** Number of POST /orders requests. */
  readonly requests: number;
  /** Processes started, so the caller can kill them in `after()`. */
  readonly started: CliRun[];
}

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

/** Runs the scenario and checks its outcome; rejects with the processes' output on a failure. */
export async function runOrderScenario(scenario: OrderScenario): Promise<void> {
  const { environment, orderLogPath, requests, started } = scenario;
  const cliBin = join(REPO_ROOT, "dist", "cli", "bin.js");
  assert.ok(existsSync(cliBin), "dist/cli/bin.js is missing: run `npm run build` (npm test does it first).");

  const server = startNode(["--import", "tsx", "examples/express-app/server.ts"], { env: environment, hardTimeoutMs: 110_000 });
  started.push(server);
  const worker = startNode([cliBin, "examples/express-app/worker.ts", "--processes", "2", "--threads", "4"], {
    env: environment,
    hardTimeoutMs: 110_000,
  });
  started.push(worker);

  const listeningLine = /Listening on (http:\/\/127\.0\.0\.1:\d+)/;
  await waitFor(() => listeningLine.test(server.stdout()), "the app to listen", 30_000);
  const baseUrl = listeningLine.exec(server.stdout())?.[1];
  assert.ok(baseUrl !== undefined);
  await worker.waitForStderrCount(READY_LINE, 2, 30_000);

  const orderIds = await sendOrders(baseUrl, requests, 20);
  assert.equal(new Set(orderIds).size, requests);

  await waitFor(() => readLines(orderLogPath).length >= requests, `${requests} finished orders in ${orderLogPath}`, 60_000);
  // Give a duplicate delivery, if there were one, time to show up before counting.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const finished = readLines(orderLogPath).map((line) => JSON.parse(line) as { orderId: string; appName: string; workerPid: number });
  assert.equal(finished.length, requests);
  assert.deepEqual(new Set(finished.map((order) => order.orderId)), new Set(orderIds));
  for (const order of finished) {
    assert.equal(order.appName, environment["APP_NAME"]);
    assert.notEqual(order.workerPid, server.pid);
  }

  const response = await fetch(`${baseUrl}/orders`);
  assert.equal(((await response.json()) as unknown[]).length, requests);

  worker.signal("SIGTERM");
  const exit = await worker.waitForExit(30_000);
  assert.deepEqual(exit, { code: 0, signal: null }, worker.stderr());

  server.signal("SIGTERM");
  await server.waitForExit(30_000);
}
