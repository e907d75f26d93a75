/**
 * Graceful shutdown of a CLI worker process on RabbitMQ under load:
 * prefetched messages go back to the queue, running ones finish (or, after
 * the shutdown timeout or a second SIGTERM, are delivered again).
 */

import { after, before } from "node:test";

import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { Message } from "../../src/message/message.js";
import { openRawClient, RABBITMQ_URL, type RawClient } from "../brokers/rabbitmq/support.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { defineShutdownTests, type ShutdownTarget } from "./shutdown-scenario.js";
import { uniqueName } from "./support.js";

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

defineShutdownTests("RabbitMQ", rabbitmqTarget);
