import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";

import type { ConsumeMessage } from "amqplib";

import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { ConfigurationError } from "../../../src/errors.js";
import { Message } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { loadVector } from "../../helpers/vectors.js";
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

function newQueue(label: string): string {
  const queueName = uniqueQueueName(label);
  created.push(queueName);
  return queueName;
}

async function sendMany(queueName: string, count: number): Promise<Message[]> {
  const sent: Message[] = [];
  for (let index = 0; index < count; index++) {
    sent.push(await broker.enqueue(new Message({ queueName, actorName: "add", args: [index, index] })));
  }
  return sent;
}

/** Starts a consumer that records its deliveries. */
async function startConsumer(queueName: string, prefetch: number): Promise<{ consumer: ReturnType<RabbitmqBroker["consume"]>; deliveries: MessageProxy[] }> {
  const deliveries: MessageProxy[] = [];
  const consumer = broker.consume(queueName, { prefetch });
  await consumer.start((message) => {
    deliveries.push(message);
  });
  return { consumer, deliveries };
}

test("consumer decodes deliveries", async () => {
  const queueName = newQueue("decode");
  const [sent] = await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 4);

  await waitFor("one delivery", () => deliveries.length === 1);
  const [delivery] = deliveries;
  assert.equal(delivery?.messageId, sent?.messageId);
  assert.deepEqual(delivery?.message.args, [0, 0]);
  assert.equal(delivery?.consumerQueue, queueName);
  await consumer.close();
});

test("proxy exposes amqplib delivery, serializes", async () => {
  // Middleware reads the delivery (e.g. `redelivered`) and logs proxies as JSON.
  const queueName = newQueue("delivery");
  await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 1);
  await waitFor("one delivery", () => deliveries.length === 1);
  const [proxy] = deliveries;

  const delivery = proxy?.delivery as ConsumeMessage;
  assert.equal(delivery.fields.redelivered, false);
  assert.equal(typeof delivery.fields.deliveryTag, "number");
  assert.equal(Message.decode(delivery.content).messageId, proxy?.messageId);
  assert.doesNotThrow(() => JSON.stringify(proxy));
  await consumer.ack(proxy!);
  await consumer.close();
  assert.equal(await raw.count(queueName), 0);
});

test("prefetch bounds unacked deliveries", async () => {
  const queueName = newQueue("prefetch");
  await sendMany(queueName, 5);
  const { consumer, deliveries } = await startConsumer(queueName, 2);

  await waitFor("two deliveries", () => deliveries.length === 2);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(deliveries.length, 2);

  await consumer.ack(deliveries[0]!);
  await waitFor("a third delivery", () => deliveries.length === 3);
  await consumer.close();
});

test("close returns unacked delivery", async () => {
  const vector = loadVector("rabbitmq-queues") as { unacked_on_disconnect: { first_delivery_redelivered: boolean; read_back: { method: { redelivered: boolean } } } };
  const queueName = newQueue("unacked");
  const [sent] = await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 1);
  await waitFor("one delivery", () => deliveries.length === 1);

  await consumer.close();

  assert.equal(deliveries[0]?.abandoned, true);
  const [returned] = await raw.drain(queueName);
  assert.equal(returned?.fields.redelivered, vector.unacked_on_disconnect.read_back.method.redelivered);
  assert.equal(returned?.content.toString("utf8"), sent?.encode().toString("utf8"));
});

test("cancel stops deliveries but not acks", async () => {
  const queueName = newQueue("cancel");
  await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 1);
  await waitFor("one delivery", () => deliveries.length === 1);

  await consumer.cancel();
  await sendMany(queueName, 1);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(deliveries.length, 1);

  await consumer.ack(deliveries[0]!);
  await consumer.close();
  assert.equal(await raw.count(queueName), 1, "only the message sent after cancel is left");
});

test("nack dead-letters to XQ", async () => {
  const queueName = newQueue("nack");
  await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 1);
  await waitFor("one delivery", () => deliveries.length === 1);

  await consumer.nack(deliveries[0]!);
  await waitFor("a dead letter", async () => (await raw.count(`${queueName}.XQ`)) === 1);
  await consumer.close();
  assert.equal(await raw.count(queueName), 0);
});

test("requeue returns messages at once", async () => {
  const queueName = newQueue("requeue");
  await sendMany(queueName, 3);
  const { consumer, deliveries } = await startConsumer(queueName, 3);
  await waitFor("three deliveries", () => deliveries.length === 3);
  await consumer.cancel();

  await consumer.requeue(deliveries.slice(1));

  await waitFor("two messages back", async () => (await raw.count(queueName)) === 2);
  await consumer.ack(deliveries[0]!);
  await consumer.close();
  assert.equal(await raw.count(queueName), 2);
});

test("settling twice sends one ack", async () => {
  const queueName = newQueue("twice");
  await sendMany(queueName, 2);
  const { consumer, deliveries } = await startConsumer(queueName, 2);
  await waitFor("two deliveries", () => deliveries.length === 2);

  await consumer.ack(deliveries[0]!);
  await consumer.ack(deliveries[0]!);
  await consumer.nack(deliveries[0]!);
  await consumer.ack(deliveries[1]!);

  // A second ack of one delivery tag would make RabbitMQ close the channel.
  await sendMany(queueName, 1);
  await waitFor("a third delivery on the same channel", () => deliveries.length === 3);
  assert.deepEqual(logs.find("warn", "RabbitMQ closed the channel"), []);
  await consumer.close();
});

test("a delivery of another consumer is not settled by this one", async () => {
  // Delivery tags count per channel, so B's channel acking A's tag would ack B's own message.
  const queueA = newQueue("owner_a");
  const queueB = newQueue("owner_b");
  await sendMany(queueA, 1);
  await sendMany(queueB, 1);
  const a = await startConsumer(queueA, 1);
  const b = await startConsumer(queueB, 1);
  await waitFor("a delivery on each queue", () => a.deliveries.length === 1 && b.deliveries.length === 1);

  await b.consumer.ack(a.deliveries[0]!);
  await b.consumer.nack(a.deliveries[0]!);
  await b.consumer.close();
  await waitFor("B's message back in its queue", async () => (await raw.count(queueB)) === 1);

  await a.consumer.ack(a.deliveries[0]!);
  await a.consumer.close();
  assert.equal(await raw.count(queueA), 0);
});

test("ack after close is ignored", async () => {
  const queueName = newQueue("late_ack");
  await sendMany(queueName, 1);
  const { consumer, deliveries } = await startConsumer(queueName, 1);
  await waitFor("one delivery", () => deliveries.length === 1);
  await consumer.close();

  await consumer.ack(deliveries[0]!);

  assert.equal(await raw.count(queueName), 1);
});

test("consumer starts only once", async () => {
  const queueName = newQueue("twice_start");
  const { consumer } = await startConsumer(queueName, 1);

  await assert.rejects(
    consumer.start(() => {}),
    ConfigurationError,
  );
  await consumer.close();
});

test("consume rejects invalid prefetch", () => {
  assert.throws(() => broker.consume("mq_prefetch", { prefetch: 0 }), /prefetch=0/);
  assert.throws(() => broker.consume("mq_prefetch", { prefetch: 70_000 }), /prefetch=70000/);
});
