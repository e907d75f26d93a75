import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import type { GetMessage } from "amqplib";

import { actor } from "../../../src/actor.js";
import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { BrokerError, ConfigurationError, ConnectionFailedError, QueueJoinTimeoutError } from "../../../src/errors.js";
import { Message } from "../../../src/message/message.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { loadVector } from "../../helpers/vectors.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor, type RawClient } from "./support.js";

interface ReadBack {
  method: { exchange: string; routing_key: string; redelivered: boolean };
  properties: Record<string, unknown>;
  body: string;
}

interface SentMessage {
  queue_name: string;
  actor_name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  message_id: string;
  message_timestamp: number;
}

const vector = loadVector("rabbitmq-queues") as {
  published_message: { sent: SentMessage; read_back_with_basic_get: ReadBack };
  delayed_message: { sent: SentMessage; "read_back_from_spec_default.DQ": ReadBack };
  priority_queue: { sent: SentMessage; read_back: ReadBack };
};

/** amqplib's property names, by pika's name as the vector spells them. */
const propertyNames: Record<string, string> = {
  content_type: "contentType",
  content_encoding: "contentEncoding",
  headers: "headers",
  delivery_mode: "deliveryMode",
  priority: "priority",
  correlation_id: "correlationId",
  reply_to: "replyTo",
  expiration: "expiration",
  message_id: "messageId",
  timestamp: "timestamp",
  type: "type",
  user_id: "userId",
  app_id: "appId",
  cluster_id: "clusterId",
};

let raw: RawClient;
let logs: LogCapture;
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

function newQueue(label: string): string {
  const queueName = uniqueQueueName(label);
  created.push(queueName);
  return queueName;
}

/** Builds the vector's message, moved to `queueName`, with its fixed id and timestamp. */
function vectorMessage(sent: SentMessage, from: string, queueName: string): Message {
  return new Message({
    queueName: sent.queue_name.replace(from, queueName).replace(/\.DQ$/, ""),
    actorName: sent.actor_name,
    args: sent.args,
    kwargs: sent.kwargs,
    options: Object.fromEntries(Object.entries(sent.options).filter(([name]) => name !== "eta")),
    messageId: sent.message_id,
    messageTimestamp: sent.message_timestamp,
  });
}

/** Checks a message read with basic.get against the vector's read-back, with the queue renamed. */
function assertReadBack(actual: GetMessage, expected: ReadBack, from: string, queueName: string): void {
  assert.equal(actual.fields.exchange, expected.method.exchange);
  assert.equal(actual.fields.routingKey, expected.method.routing_key.replace(from, queueName));
  assert.equal(actual.fields.redelivered, expected.method.redelivered);

  for (const [pikaName, value] of Object.entries(expected.properties)) {
    const name = propertyNames[pikaName];
    assert.ok(name !== undefined, `known property ${pikaName}`);
    const property = (actual.properties as unknown as Record<string, unknown>)[name];
    assert.deepEqual(property ?? null, value, `property ${pikaName}`);
  }
}

async function getOne(queueName: string): Promise<GetMessage> {
  let message: GetMessage | false = false;
  await waitFor(`a message in ${queueName}`, async () => {
    message = await raw.channel.get(queueName, { noAck: true });
    return message !== false;
  });
  return message as unknown as GetMessage;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("published message matches vector", async () => {
  const queueName = newQueue("publish");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  const { sent, read_back_with_basic_get: expected } = vector.published_message;
  try {
    await broker.enqueue(vectorMessage(sent, "spec_default", queueName));
  } finally {
    await broker.close();
  }

  const message = await getOne(queueName);
  assertReadBack(message, expected, "spec_default", queueName);
  assert.equal(message.content.toString("utf8"), expected.body.replaceAll("spec_default", queueName));
});

test("delayed message goes to DQ with eta", async () => {
  const queueName = newQueue("delayed");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  const { sent, "read_back_from_spec_default.DQ": expected } = vector.delayed_message;
  let before = 0;
  try {
    before = Date.now();
    await broker.enqueue(vectorMessage(sent, "spec_default", queueName), { delay: 10_000 });
  } finally {
    await broker.close();
  }

  const message = await getOne(`${queueName}.DQ`);
  assertReadBack(message, expected, "spec_default", queueName);

  const body = JSON.parse(message.content.toString("utf8")) as SentMessage;
  const eta = body.options["eta"] as number;
  assert.ok(eta >= before + 10_000, `eta ${eta} is at least 10 s after the send`);
  const expectedBody = expected.body.replaceAll("spec_default", queueName).replace(String(sent.options["eta"]), String(eta));
  assert.equal(message.content.toString("utf8"), expectedBody);
  assert.equal(await raw.count(queueName), 0);
});

test("broker priority becomes AMQP priority", async () => {
  const queueName = newQueue("priority");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxPriority: 10 });
  const { sent, read_back: expected } = vector.priority_queue;
  try {
    await broker.enqueue(vectorMessage(sent, "spec_prio", queueName));
  } finally {
    await broker.close();
  }

  const message = await getOne(queueName);
  assertReadBack(message, expected, "spec_prio", queueName);
  assert.equal(message.content.toString("utf8"), expected.body.replaceAll("spec_prio", queueName));
});

test("higher broker priority is delivered first", async () => {
  const queueName = newQueue("priority_order");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxPriority: 10 });
  const task = actor(() => {}, { broker, actorName: "prioritised", queueName });
  try {
    await task.sendWithOptions({ args: [], brokerPriority: 1 });
    await task.sendWithOptions({ args: [], brokerPriority: 9 });
    await task.send();
  } finally {
    await broker.close();
  }

  await waitFor("three messages", async () => (await raw.count(queueName)) === 3);
  const priorities = (await raw.drain(queueName)).map((message) => message.properties.priority as unknown);
  assert.deepEqual(priorities, [9, 1, undefined]);
});

test("invalid broker priority is rejected", async () => {
  const queueName = newQueue("priority_invalid");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxPriority: 10 });
  const task = actor(() => {}, { broker, actorName: "prioritised", queueName });
  try {
    await assert.rejects(task.sendWithOptions({ args: [], brokerPriority: 300 }), (error: unknown) => {
      return error instanceof ConfigurationError && error.message.includes("brokerPriority 300");
    });
  } finally {
    await broker.close();
  }
});

test("confirmed send resolves after RabbitMQ has it", async () => {
  const queueName = newQueue("confirm");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const task = actor((n: number) => n, { broker, actorName: "confirmed", queueName });
  try {
    await Promise.all(Array.from({ length: 50 }, (_, index) => task.send(index)));

    assert.equal(await raw.count(queueName), 50);
  } finally {
    await broker.close();
  }
});

test("confirmed send declares deleted queue again", async () => {
  const queueName = newQueue("unroutable");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const task = actor(() => {}, { broker, actorName: "unroutable", queueName });
  try {
    await task.send();
    await raw.deleteQueueSet(queueName);

    await task.send();

    assert.equal(await raw.count(queueName), 1);
    assert.equal(logs.find("warn", "as unroutable; declaring").length, 1);
  } finally {
    await broker.close();
  }
});

test("connect to closed port fails with redacted URL", async () => {
  const port = await closedPort();
  const broker = new RabbitmqBroker({
    url: `amqp://app:hunter2@127.0.0.1:${port}/`,
    connectionAttempts: 2,
    minReconnectDelay: 10,
    maxReconnectDelay: 20,
  });
  try {
    await assert.rejects(broker.connect(), (error: unknown) => {
      assert.ok(error instanceof ConnectionFailedError);
      assert.match(error.message, new RegExp(`amqp://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/`));
      assert.match(error.message, /after 2 attempt/);
      assert.match(error.message, /ECONNREFUSED/);
      assert.equal(error.message.includes("hunter2"), false);
      assert.ok(error.cause instanceof Error);
      return true;
    });

    const logged = logs.records.filter((record) => JSON.stringify(record).includes("hunter2"));
    assert.deepEqual(logged, []);
  } finally {
    await broker.close();
  }
});

test("connect with wrong password fails", async () => {
  const broker = new RabbitmqBroker({ url: "amqp://guest:wrong-secret@127.0.0.1:5672", connectionAttempts: 1 });
  try {
    await assert.rejects(broker.connect(), (error: unknown) => {
      assert.ok(error instanceof ConnectionFailedError);
      assert.match(error.message, /ACCESS_REFUSED|ACCESS-REFUSED/);
      assert.equal(error.message.includes("wrong-secret"), false);
      return true;
    });
  } finally {
    await broker.close();
  }
});

test("connect tries fail-over URLs in order", async () => {
  const port = await closedPort();
  const broker = new RabbitmqBroker({ url: [`amqp://127.0.0.1:${port}`, RABBITMQ_URL], connectionAttempts: 1 });
  try {
    await broker.connect();
  } finally {
    await broker.close();
  }
});

test("send to closed port rejects with ConnectionFailedError", async () => {
  const port = await closedPort();
  const broker = new RabbitmqBroker({ url: `amqp://127.0.0.1:${port}`, connectionAttempts: 2, minReconnectDelay: 10 });
  const task = actor(() => {}, { broker, actorName: "unreachable", queueName: "mq_unreachable" });
  try {
    await assert.rejects(task.send(), ConnectionFailedError);
  } finally {
    await broker.close();
  }
});

test("close is idempotent and broker reusable", async () => {
  const queueName = newQueue("reuse");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  const task = actor(() => {}, { broker, actorName: "reused", queueName });

  await task.send();
  await Promise.all([broker.close(), broker.close()]);
  await broker.close();
  await task.send();
  await broker.close();

  await waitFor("two messages", async () => (await raw.count(queueName)) === 2);
});

test("flush purges all three queues", async () => {
  const queueName = newQueue("flush");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const task = actor(() => {}, { broker, actorName: "flushed", queueName });
  try {
    await task.send();
    await task.sendWithOptions({ args: [], delay: 60_000 });
    raw.channel.sendToQueue(`${queueName}.XQ`, Buffer.from("dead"));
    await waitFor("a message in the XQ", async () => (await raw.count(`${queueName}.XQ`)) === 1);

    await broker.flush(queueName);

    assert.equal(await raw.count(queueName), 0);
    assert.equal(await raw.count(`${queueName}.DQ`), 0);
    // Python Dramatiq's flush purges the dead-letter queue too.
    assert.equal(await raw.count(`${queueName}.XQ`), 0);

    raw.channel.sendToQueue(`${queueName}.XQ`, Buffer.from("dead"));
    await waitFor("a message in the XQ", async () => (await raw.count(`${queueName}.XQ`)) === 1);
    await broker.flushAll();
    assert.equal(await raw.count(`${queueName}.XQ`), 0);
  } finally {
    await broker.close();
  }
});

test("join times out while messages wait", async () => {
  const queueName = newQueue("join_timeout");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const task = actor(() => {}, { broker, actorName: "waiting", queueName });
  try {
    await task.send();

    await assert.rejects(broker.join(queueName, { timeout: 300 }), (error: unknown) => {
      return error instanceof QueueJoinTimeoutError && error.message.includes("1 message(s) ready");
    });

    await raw.drain(queueName);
    await broker.join(queueName, { timeout: 5000 });
  } finally {
    await broker.close();
  }
});

test("join fails fast on dead letter", async () => {
  const queueName = newQueue("join_dead");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true });
  const task = actor(() => {}, { broker, actorName: "doomed", queueName });
  try {
    await task.send();
    const joined = broker.join(queueName, { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 150));

    raw.channel.sendToQueue(`${queueName}.XQ`, Buffer.from("dead"));

    await assert.rejects(joined, (error: unknown) => error instanceof BrokerError && error.message.includes("dead-lettered"));
  } finally {
    await broker.close();
  }
});

test("oversized message is rejected before sending", async () => {
  const queueName = uniqueQueueName("oversized");
  // Confirms make the small send wait until RabbitMQ has routed it, so the count is final.
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxMessageSize: 1024, confirmDelivery: true });
  const raw = await openRawClient();
  try {
    const big = actor((_text: string) => undefined, { broker, actorName: "big", queueName });
    await big.send("small");
    await assert.rejects(big.send("x".repeat(2048)), (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, /larger than the 1024 bytes RabbitMQ accepts/);
      return true;
    });
    assert.equal(await raw.count(queueName), 1);
  } finally {
    await broker.close();
    await raw.deleteQueueSet(queueName);
    await raw.close();
  }
});
