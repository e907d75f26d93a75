/**
 * Graceful shutdown of a CLI worker process on RabbitMQ under load:
 * prefetched messages go back to the queue, running ones finish (or, after
 * the shutdown timeout or a second SIGTERM, are delivered again).
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { EXIT_KILLED, EXIT_OK } from "../../src/cli/exit-codes.js";
import { Message } from "../../src/message/message.js";
import { openRawClient, RABBITMQ_URL, type RawClient } from "../brokers/rabbitmq/support.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { assertCleanStop, runLeftovers, sendLoad, startApp, type ShutdownTarget } from "./shutdown-scenario.js";
import { sleep, uniqueName } from "./support.js";

let raw: RawClient;
let logs: LogCapture;
const queues: string[] = [];

before(async () => {
  logs = captureLogs();
  raw = await openRawClient();
});

after(async () => {
  for (const queueName of queues) {
    await raw.deleteQueueSet(queueName);
  }
  await raw.close();
  logs.restore();
});

/** Reads the ready messages of `queueName` without removing them: they are returned with basic.nack(requeue). */
async function peek(queueName: string): Promise<Message[]> {
  const channel = await raw.model.createChannel();
  const messages: Message[] = [];
  try {
    for (let index = 0; index < 100; index += 1) {
      const got = await channel.get(queueName, { noAck: false });
      if (got === false) {
        break;
      }
      messages.push(Message.decode(got.content));
    }
  } finally {
    channel.nackAll(true);
    await channel.close();
  }
  return messages;
}

function rabbitmqTarget(): ShutdownTarget {
  const queueName = uniqueName("stop");
  queues.push(queueName);
  return {
    env: { FT_BROKER: "rabbitmq", FT_QUEUE: queueName },
    queueName,
    createBroker: () => new RabbitmqBroker({ url: RABBITMQ_URL }),
    waiting: () => peek(queueName),
    delayed: () => peek(`${queueName}.DQ`),
    deadLettered: () => raw.count(`${queueName}.XQ`),
  };
}

test("RabbitMQ SIGTERM under load loses nothing", async (t) => {
  const target = rabbitmqTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target);

  await sleep(1000);
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  await assertCleanStop(target, app, sent);
});

test("RabbitMQ second SIGTERM exits 1, redelivers", async (t) => {
  const target = rabbitmqTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target);

  await sleep(1000);
  app.run.signal("SIGTERM");
  await sleep(500);
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
  assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks were cut short");

  const runs = await runLeftovers(target, sent);
  assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each of the 10 messages ran once afterwards");
});

test("RabbitMQ shutdown timeout leaves tasks unacked", async (t) => {
  const target = rabbitmqTarget();
  const sent = await sendLoad(target);
  const app = await startApp(t, target, ["--worker-shutdown-timeout", "1000"]);

  // Stopping right away leaves the 3 s tasks 2 s past the timeout.
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  assert.match(app.run.stderr(), /did not finish within the shutdown timeout/);
  assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks did not finish");
  assert.deepEqual(
    (await target.waiting()).map((message) => message.messageId).sort(),
    sent.map((message) => message.messageId).sort(),
    "all 10 messages, the unfinished ones included, are back in the queue",
  );
  assert.deepEqual(await target.delayed(), []);

  const runs = await runLeftovers(target, sent);
  assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each message ran once afterwards");
});
