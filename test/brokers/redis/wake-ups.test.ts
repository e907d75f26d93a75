/** The wake-up channel between Redis brokers in different processes, on the real server. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { RedisBroker } from "../../../src/brokers/redis/index.js";
import { WakeUpChannel } from "../../../src/brokers/redis/wake-ups.js";
import { silentLogger } from "../../../src/logger.js";
import { Message } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { adminClient, deleteNamespace, REDIS_URL, uniqueNamespace, waitFor } from "./helpers.js";

let admin: Redis;
let logs: LogCapture;
const namespaces: string[] = [];
const clients: Redis[] = [];

before(async () => {
  logs = captureLogs();
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  for (const client of clients) {
    client.disconnect();
  }
  await admin.quit();
  logs.restore();
});

function newNamespace(label: string): string {
  const namespace = uniqueNamespace(label);
  namespaces.push(namespace);
  return namespace;
}

function newClient(): Redis {
  const client = adminClient();
  clients.push(client);
  return client;
}

function newChannel(namespace: string, senderId: string, received: string[]): WakeUpChannel {
  return new WakeUpChannel({
    namespace,
    senderId,
    logger: silentLogger,
    createSubscriber: () => newClient(),
    onWakeUp: (queueName) => {
      received.push(queueName);
    },
  });
}

async function subscriberCount(channel: string): Promise<number> {
  const [, count] = (await admin.call("pubsub", "numsub", channel)) as [string, number];
  return count;
}

test("wake-up reaches subscriber of queue", async () => {
  const namespace = newNamespace("wake-reach");
  const received: string[] = [];
  const worker = newChannel(namespace, "worker", received);
  const producer = newChannel(namespace, "producer", []);
  try {
    worker.subscribe("default.DQ");
    await waitFor("the subscription", async () => (await subscriberCount(worker.channelName("default.DQ"))) === 1);

    producer.notify(newClient(), "default.DQ");

    await waitFor("the wake-up", () => received.length === 1);
    assert.deepEqual(received, ["default.DQ"]);
  } finally {
    worker.close();
  }
});

test("wake-up ignores own notifications", async () => {
  const namespace = newNamespace("wake-own");
  const received: string[] = [];
  const worker = newChannel(namespace, "worker", received);
  const producer = newChannel(namespace, "producer", []);
  const client = newClient();
  try {
    worker.subscribe("default");
    worker.subscribe("sentinel");
    await waitFor("the subscriptions", async () => (await subscriberCount(worker.channelName("sentinel"))) === 1);

    // All three go out on one connection, so Redis delivers them in this
    // order: once the sentinel arrives, the others have been handled.
    worker.notify(client, "default");
    producer.notify(client, "default");
    producer.notify(client, "sentinel");

    await waitFor("the sentinel wake-up", () => received.includes("sentinel"));
    assert.deepEqual(received, ["default", "sentinel"]);
  } finally {
    worker.close();
  }
});

test("wake-up subscription counts consumers", async () => {
  const namespace = newNamespace("wake-count");
  const worker = newChannel(namespace, "worker", []);
  const channelName = worker.channelName("default");
  try {
    worker.subscribe("default");
    worker.subscribe("default");
    await waitFor("the subscription", async () => (await subscriberCount(channelName)) === 1);

    worker.unsubscribe("default");
    await admin.ping();
    assert.equal(await subscriberCount(channelName), 1);

    worker.unsubscribe("default");
    await waitFor("the unsubscription", async () => (await subscriberCount(channelName)) === 0);
  } finally {
    worker.close();
  }
});

test("wake-up coalesces a burst of enqueues", async () => {
  const namespace = newNamespace("wake-burst");
  const client = newClient();
  const channel = newChannel(namespace, "producer", []);
  const published: string[] = [];
  const publish = client.publish.bind(client);
  client.publish = ((name: string, message: string) => {
    published.push(name);
    return publish(name, message);
  });

  for (let index = 0; index < 50; index++) {
    channel.notify(client, "default");
  }
  // The second PUBLISH goes out when the first completes; a PING after it
  // returns once the second has completed too.
  await waitFor("the second publish", () => published.length === 2);
  await client.ping();

  // One PUBLISH for the first call and one for all that came while it was in flight.
  assert.deepEqual(published, [channel.channelName("default"), channel.channelName("default")]);
});

test("enqueue wakes consumer of another broker", async () => {
  const namespace = newNamespace("wake-broker");
  const producer = new RedisBroker({ url: REDIS_URL, namespace, middleware: [] });
  const worker = new RedisBroker({ url: REDIS_URL, namespace, middleware: [] });
  const deliveries: MessageProxy[] = [];
  const consumer = worker.consume("default", { prefetch: 4 });
  let wakes = 0;
  const wake = consumer.wake.bind(consumer);
  consumer.wake = () => {
    wakes += 1;
    wake();
  };

  try {
    await consumer.start((message) => {
      deliveries.push(message);
    });
    await waitFor("the worker's subscription", async () => (await subscriberCount(`${namespace}:default.wakeup`)) === 1);

    await producer.enqueue(new Message({ queueName: "default", actorName: "add", args: [1, 2] }));

    await waitFor("the wake-up of the worker's consumer", () => wakes > 0);
    await waitFor("the delivery", () => deliveries.length === 1);
    for (const delivery of deliveries) {
      await consumer.ack(delivery);
    }
  } finally {
    await consumer.close();
    await worker.close();
    await producer.close();
  }
});
