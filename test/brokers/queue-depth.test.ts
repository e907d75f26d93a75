import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor } from "./rabbitmq/support.js";

/** Sends two messages and one delayed message; checks the depth of each queue. */
async function checkDepths(broker: Broker, queueName: string): Promise<void> {
  const task = actor(() => undefined, { broker, actorName: `depth_${queueName}`, queueName });
  await task.send();
  await task.send();
  await task.sendWithOptions({ delay: 60_000 });

  assert.equal(await broker.queueDepth(queueName), 2);
  assert.equal(await broker.queueDepth(`${queueName}.DQ`), 1);
  assert.equal(await broker.queueDepth(`${queueName}.XQ`), 0);
}

/** Flushes `queueName` and checks that its queue, delay queue and dead-letter queue are empty. */
async function checkFlushed(broker: Broker, queueName: string): Promise<void> {
  await broker.flush(queueName);
  assert.equal(await broker.queueDepth(queueName), 0);
  assert.equal(await broker.queueDepth(`${queueName}.DQ`), 0);
  assert.equal(await broker.queueDepth(`${queueName}.XQ`), 0);
}

test("queueDepth on stub broker", async () => {
  const broker = new StubBroker();
  await checkDepths(broker, "depth_stub");
  broker.addDeadLetter("depth_stub", Buffer.from("dead"), undefined, undefined);
  assert.equal(await broker.queueDepth("depth_stub.XQ"), 1);
  await checkFlushed(broker, "depth_stub");
});

test("queueDepth on RabbitMQ", async () => {
  const queueName = uniqueQueueName("depth");
  // Confirms make each send wait until RabbitMQ has routed the message, so the counts are final.
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const raw = await openRawClient();
  try {
    await checkDepths(broker, queueName);
    raw.channel.sendToQueue(`${queueName}.XQ`, Buffer.from("dead"));
    await waitFor("the dead letter to arrive", async () => (await raw.count(`${queueName}.XQ`)) === 1);
    await checkFlushed(broker, queueName);
  } finally {
    await broker.close();
    await raw.deleteQueueSet(queueName);
    await raw.close();
  }
});

test("queueDepth on Redis", async () => {
  const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace: `depth-${randomUUID()}` });
  try {
    await checkDepths(broker, "depth_redis");
  } finally {
    await broker.flushAll();
    await broker.close();
  }
});
