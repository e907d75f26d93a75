/**
 * The RabbitMQ consumer writes the acks of one event-loop turn together,
 * as one basic.ack with `multiple` where it can. A `multiple` ack that
 * reached past a delivery still held by the worker would ack that message
 * too and lose it, so these tests settle deliveries out of order, keep
 * some unsettled, and check with another client what RabbitMQ kept.
 */

import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";

import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { Message } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor, type RawClient } from "./support.js";

let raw: RawClient;
let logs: LogCapture;
let broker: RabbitmqBroker;
const created: string[] = [];

before(async () => {
  raw = await openRawClient();
  logs = captureLogs();
});

after(async () => {
  for (const queueName of created) {
    await raw.deleteQueueSet(queueName);
  }
  await raw.close();
  logs.restore();
});

beforeEach(() => {
  broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
});

afterEach(async () => {
  await broker.close();
});

async function deliverAll(label: string, count: number): Promise<{ queueName: string; consumer: ReturnType<RabbitmqBroker["consume"]>; deliveries: MessageProxy[] }> {
  const queueName = uniqueQueueName(label);
  created.push(queueName);
  for (let index = 0; index < count; index++) {
    await broker.enqueue(new Message({ queueName, actorName: "add", args: [index] }));
  }

  const deliveries: MessageProxy[] = [];
  const consumer = broker.consume(queueName, { prefetch: count });
  await consumer.start((message) => {
    deliveries.push(message);
  });
  await waitFor(`${count} deliveries`, () => deliveries.length === count);
  return { queueName, consumer, deliveries };
}

/** Returns the first argument of each message, the index it was sent with, in ascending order. */
function indexes(messages: readonly { content: Buffer }[]): number[] {
  return messages.map((message) => Message.decode(message.content).args[0] as number).sort((a, b) => a - b);
}

function pick(deliveries: readonly MessageProxy[], positions: readonly number[]): MessageProxy[] {
  return positions.map((position) => {
    const delivery = deliveries[position];
    assert.ok(delivery !== undefined, `no delivery at position ${position}`);
    return delivery;
  });
}

test("batched acks spare held deliveries", async () => {
  const { queueName, consumer, deliveries } = await deliverAll("ackheld", 10);

  // Acked in reverse, in one turn, around two deliveries that stay unsettled.
  for (const delivery of pick(deliveries, [9, 8, 7, 6, 4, 2, 1, 0])) {
    await consumer.ack(delivery);
  }
  await new Promise((resolve) => setImmediate(resolve));
  await consumer.close();

  const returned = await raw.drain(queueName);
  assert.deepEqual(indexes(returned), [3, 5]);
});

test("batched acks beside nack and requeue", async () => {
  const { queueName, consumer, deliveries } = await deliverAll("acknack", 8);

  for (const delivery of pick(deliveries, [7, 0, 5])) {
    await consumer.ack(delivery);
  }
  await consumer.nack(pick(deliveries, [1])[0]!);
  await consumer.requeue(pick(deliveries, [2]));
  for (const delivery of pick(deliveries, [6, 3])) {
    await consumer.ack(delivery);
  }
  await consumer.close();

  const ready = await raw.drain(queueName);
  assert.deepEqual(indexes(ready), [2, 4]);
  const dead = await raw.drain(`${queueName}.XQ`);
  assert.deepEqual(indexes(dead), [1]);
});

test("acks pending at close reach RabbitMQ", async () => {
  const { queueName, consumer, deliveries } = await deliverAll("ackclose", 5);

  // No turn passes between these acks and close(), so close() must write them.
  for (const delivery of deliveries) {
    void consumer.ack(delivery);
  }
  await consumer.close();

  assert.equal(await raw.count(queueName), 0);
});

test("acks over many turns leave queue empty", async () => {
  const { queueName, consumer, deliveries } = await deliverAll("ackturns", 30);

  for (const [position, delivery] of deliveries.entries()) {
    await consumer.ack(delivery);
    if (position % 7 === 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await new Promise((resolve) => setImmediate(resolve));
  await consumer.close();

  assert.equal(await raw.count(queueName), 0);
});
