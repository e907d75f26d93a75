/**
 * The Express integration: a lazy broker configured from `app.set()`
 * settings, a route that sends a message, and a task that reads the Express
 * app through `currentApp()`, run by a real Worker on the stub broker.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import express, { type Express } from "express";

import { StubBroker as EngineStubBroker } from "../../src/brokers/stub/index.js";
import { Worker } from "../../src/worker/worker.js";
import { currentApp, currentAppOrUndefined, NoAppContextError, RabbitmqBroker, setBrokerSettingsFromEnv } from "../../src/web/express.js";

function uniquePrefix(): string {
  return `EXPRESS_${randomBytes(4).toString("hex").toUpperCase()}`;
}

async function listen(app: Express): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, "127.0.0.1", (error?: Error) => {
      if (error !== undefined) {
        reject(error);
        return;
      }
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}` });
    });
  });
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => {
      if (error === undefined) {
        resolve();
      } else {
        reject(error);
      }
    });
  });
}

test("task reads Express app after awaits", async () => {
  const prefix = uniquePrefix();
  const queueName = `web_express_${randomBytes(4).toString("hex")}`;
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const seen: { app: Express; greeting: unknown }[] = [];

  // Declared before the app exists, as a task module would.
  const greet = broker.actor(
    async function greet(name: string): Promise<string> {
      await sleep(5);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const app = currentApp();
      await Promise.resolve();
      seen.push({ app, greeting: app.get("greeting") });
      return `${String(app.get("greeting"))}, ${name}`;
    },
    { queueName },
  );

  const app = express();
  app.set("greeting", "Hello");
  app.set(`${prefix}_CLASS`, "StubBroker");
  app.post("/greet/:name", async (request, response) => {
    const message = await greet.send(request.params.name ?? "");
    response.status(202).json({ messageId: message.messageId });
  });
  broker.initApp(app);

  const live = broker.liveBroker;
  assert.ok(live instanceof EngineStubBroker);
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  await worker.start();
  const { server, url } = await listen(app);

  try {
    const response = await fetch(`${url}/greet/Ada`, { method: "POST" });
    assert.equal(response.status, 202);
    const body = (await response.json()) as { messageId?: unknown };
    assert.equal(typeof body.messageId, "string");

    await live.join(queueName, { timeout: 5000 });
    await worker.join();
  } finally {
    await closeServer(server);
    await worker.stop();
  }

  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.app, app);
  assert.equal(seen[0]?.greeting, "Hello");
  assert.equal(currentAppOrUndefined(), undefined, "the app context ends with the task");
  assert.throws(() => currentApp(), NoAppContextError);
});

test("mounted app inherits broker settings", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const parent = express();
  const child = express();
  parent.set(`${prefix}_CLASS`, "StubBroker");
  parent.use("/child", child);

  broker.initApp(child);

  assert.ok(broker.liveBroker instanceof EngineStubBroker);
  assert.equal(broker.app, child);
});

test("settings from environment configure broker", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  const app = express();
  const env = { [`${prefix}_CLASS`]: "StubBroker", [`${prefix}_URL`]: "amqp://env.test", OTHER: "x" };

  const copied = setBrokerSettingsFromEnv(app, { prefix, env });
  broker.initApp(app);

  assert.deepEqual(copied.sort(), [`${prefix}_CLASS`, `${prefix}_URL`].sort());
  assert.equal(app.get(`${prefix}_URL`), "amqp://env.test");
  assert.equal(app.get("OTHER"), undefined);
  assert.ok(broker.liveBroker instanceof EngineStubBroker);
});
