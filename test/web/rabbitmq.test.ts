/**
 * A lazy RabbitmqBroker configured from app config against the real
 * RabbitMQ server on 127.0.0.1:5672: a message sent through it is processed
 * by a Worker, and the task reads the app through currentApp(). Queues are deleted afterwards.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import amqplib from "amqplib";

import { RabbitmqBroker as EngineRabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { currentApp, RabbitmqBroker } from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";
import { runOnWorker } from "./worker-run.js";

const RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672";
const createdQueues: string[] = [];

after(async () => {
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const queueName of createdQueues) {
      for (const name of [queueName, `${queueName}.DQ`, `${queueName}.XQ`]) {
        await channel.deleteQueue(name);
      }
    }
    await channel.close();
  } finally {
    await connection.close();
  }
});

test("lazy RabbitmqBroker from config runs a task", async () => {
  const suffix = randomBytes(4).toString("hex");
  const prefix = `WEB_RABBITMQ_${suffix.toUpperCase()}`;
  const queueName = `web_lazy_rabbitmq_${suffix}`;
  createdQueues.push(queueName);
  const logs = captureLogs();

  const broker = new RabbitmqBroker({ configPrefix: prefix, url: "amqp://127.0.0.1:1" });
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
      [`${prefix}_URL`]: RABBITMQ_URL,
      [`${prefix}_CONFIRM_DELIVERY`]: "true",
      [`${prefix}_CONNECTION_ATTEMPTS`]: "3",
    },
  };
  broker.initApp(app);
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineRabbitmqBroker);
  assert.equal(live.confirmDelivery, true);

  await runOnWorker(broker, {
    queueName,
    concurrency: 1,
    send: () => add.send(2, 3),
    done: () => results.length === 1,
    label: "the task to run on the RabbitMQ worker",
    logs,
  });

  assert.deepEqual(results, [{ total: 5, app }]);
  assert.equal(results[0]?.app, app);
  assert.deepEqual(
    logs.records.filter((record) => record.level === "error"),
    [],
    "no error was logged",
  );
  assert.equal(logs.find("warn", `${prefix}_URL overrides`).length, 1);
  assert.ok(!logs.records.some((record) => JSON.stringify(record).includes("guest:guest")), "no log line shows the password");
});
