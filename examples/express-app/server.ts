/**
 * Runs the example app. With `EMBEDDED_WORKER=1`, or when the broker is the
 * in-memory StubBroker, a worker runs in this same process; otherwise run
 * one with the CLI: `npx melodramatiq examples/express-app/worker.ts`.
 */

import type { Server } from "node:http";

import { Worker } from "melodramatiq";

import { createApp } from "./app.js";
import { broker } from "./tasks.js";

const app = createApp();
const embedded = process.env["EMBEDDED_WORKER"] === "1" || app.get("DRAMATIQ_BROKER_CLASS") === "StubBroker";
const worker = embedded ? new Worker(broker, { concurrency: 8 }) : undefined;
await worker?.start();

const port = Number(process.env["PORT"] ?? 3000);
const server: Server = app.listen(port, "127.0.0.1", () => {
  const address = server.address();
  const actualPort = typeof address === "object" && address !== null ? address.port : port;
  // Tests and scripts read this line to find the port.
  console.log(`Listening on http://127.0.0.1:${actualPort} (${embedded ? "embedded worker" : "no worker in this process"})`);
});

async function shutdown(): Promise<void> {
  server.close();
  await worker?.stop({ timeout: 10_000 });
  await broker.close();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void shutdown().then(() => process.exit(0));
  });
}
