/**
 * The quick-start demo: runs the example app on the in-memory StubBroker with
 * a worker in the same process, sends a few orders over HTTP and shows each
 * request becoming a finished task. No server is needed.
 *
 *   npm run demo              # send five orders, show them finish, exit
 *   npm run demo -- --serve   # keep serving on PORT (default 3000) for curl
 */

import type { AddressInfo } from "node:net";

import { Worker } from "melodramatiq";

import { createApp } from "./app.js";
import type { FinishedOrder } from "./order-log.js";
import { broker } from "./tasks.js";

const serve = process.argv.includes("--serve");
const app = createApp({ DRAMATIQ_BROKER_CLASS: process.env["DRAMATIQ_BROKER_CLASS"] ?? "StubBroker" });
const worker = new Worker(broker, { concurrency: 4 });
await worker.start();

const server = app.listen(serve ? Number(process.env["PORT"] ?? 3000) : 0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`Example app listening on ${baseUrl}, broker ${String(app.get("DRAMATIQ_BROKER_CLASS"))}, worker in this process.\n`);

if (serve) {
  console.log(`Try:  curl -X POST ${baseUrl}/orders -H 'content-type: application/json' -d '{"item":"book","quantity":2}'`);
  console.log(`Then: curl ${baseUrl}/orders\n`);
  process.once("SIGINT", () => {
    void worker.stop().then(() => server.close());
  });
} else {
  await runDemo();
  await worker.stop();
  await broker.close();
  server.close();
}

async function runDemo(): Promise<void> {
  const items = [
    ["book", 2],
    ["lamp", 1],
    ["tea", 3],
    ["pen", 10],
    ["map", 1],
  ] as const;

  const queued = new Map<string, string>();
  for (const [item, quantity] of items) {
    const response = await fetch(`${baseUrl}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ item, quantity }),
    });
    const body = (await response.json()) as { orderId: string; messageId: string };
    queued.set(body.orderId, item);
    console.log(`POST /orders ${item} x${quantity} -> ${response.status}, message ${body.messageId}`);
  }

  const finished = await waitForOrders(queued.size);
  console.log(`\nGET /orders -> ${finished.length} finished task(s):`);
  for (const order of finished) {
    console.log(`  ${order.item} x${order.quantity} finished at ${order.finishedAt} in process ${order.workerPid}, app "${order.appName}"`);
  }

  if (finished.length !== queued.size) {
    console.error(`\nOnly ${finished.length} of ${queued.size} orders finished in time.`);
    process.exitCode = 1;
  }
}

/** Polls GET /orders until `count` orders are finished, for at most 10 s. */
async function waitForOrders(count: number): Promise<FinishedOrder[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const orders = (await (await fetch(`${baseUrl}/orders`)).json()) as FinishedOrder[];
    if (orders.length >= count || Date.now() > deadline) {
      return orders;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
