/**
 * End to end on RabbitMQ: the example app and the compiled CLI as separate
 * processes; see order-scenario.ts for what is checked.
 */

import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { connect } from "amqplib";

import type { CliRun } from "../cli/cli-process.js";
import { runOrderScenario } from "./order-scenario.js";

const queueName = `e2e_orders_${randomUUID().slice(0, 8)}`;
const workDirectory = mkdtempSync(join(tmpdir(), "melodramatiq-e2e-"));
const orderLogPath = join(workDirectory, "orders.jsonl");
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

test("example app orders run once in CLI worker", { timeout: 120_000 }, async () => {
  await runOrderScenario({
    environment: {
      ORDERS_QUEUE: queueName,
      ORDER_LOG_PATH: orderLogPath,
      APP_NAME: "e2e-orders",
      DRAMATIQ_BROKER_CLASS: "RabbitmqBroker",
      DRAMATIQ_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672",
      PORT: "0",
    },
    orderLogPath,
    requests: 200,
    started,
  });
});
