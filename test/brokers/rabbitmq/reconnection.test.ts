/**
 * Connection loss, simulated with a loopback TCP proxy between the broker
 * and the shared RabbitMQ server: `cut()` drops every connection as a killed
 * server would, `pause()` refuses new ones as a server that is down would.
 */

import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";

import { actor } from "../../../src/actor.js";
import { RabbitmqBroker, type RabbitmqBrokerOptions } from "../../../src/brokers/rabbitmq/index.js";
import { BrokerConnectionError, ConnectionFailedError } from "../../../src/errors.js";
import { Worker } from "../../../src/worker/worker.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor, watchProcessErrors, type RawClient } from "./support.js";

let raw: RawClient;
let proxy: TcpProxy;
let logs: LogCapture;
let processErrors: ReturnType<typeof watchProcessErrors>;
const created: string[] = [];

before(async () => {
  raw = await openRawClient();
});

after(async () => {
  for (const queueName of created) {
    await raw.deleteQueueSet(queueName);
  }
  await raw.close();
});

beforeEach(async () => {
  const target = new URL(RABBITMQ_URL);
  proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5672) });
  logs = captureLogs({ echo: process.env["ECHO_LOGS"] === "1" });
  processErrors = watchProcessErrors();
});

afterEach(async () => {
  await proxy.close();
  processErrors.stop();
  logs.restore();
  assert.deepEqual(processErrors.errors, [], "no unhandled rejection or uncaught exception");
});

function newQueue(label: string): string {
  const queueName = uniqueQueueName(label);
  created.push(queueName);
  return queueName;
}

/** Creates a broker that reaches RabbitMQ through the proxy, with short reconnect delays. */
function proxiedBroker(options: RabbitmqBrokerOptions = {}): RabbitmqBroker {
  return new RabbitmqBroker({
    url: proxy.urlFor(RABBITMQ_URL),
    minReconnectDelay: 50,
    maxReconnectDelay: 400,
    connectionAttempts: 3,
    ...options,
  });
}

/** Waits until consumers of `queueName` and its delay queue have each resumed `times` times in total. */
async function waitForRecovery(queueName: string, times = 1): Promise<void> {
  await waitFor(`consumers of ${queueName} to resume`, () => {
    const resumed = logs.find("info", "Resumed consuming");
    const main = resumed.filter((record) => record.fields["queueName"] === queueName).length;
    const delayed = resumed.filter((record) => record.fields["queueName"] === `${queueName}.DQ`).length;
    return main >= times && delayed >= times;
  });
}

test("idle worker recovers after cut", async () => {
  const queueName = newQueue("idle_cut");
  const broker = proxiedBroker();
  const direct = new RabbitmqBroker({ url: RABBITMQ_URL });
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  const calls: number[] = [];
  actor(
    (value: number) => {
      calls.push(value);
    },
    { broker, actorName: "record", queueName },
  );
  const producer = actor((_value: number) => {}, { broker: direct, actorName: "record", queueName });

  try {
    await worker.start();
    await producer.send(0);
    await waitFor("the first call", () => calls.length === 1);

    proxy.cut();
    await waitForRecovery(queueName);

    for (let index = 1; index <= 10; index++) {
      await producer.send(index);
    }
    await waitFor("ten fresh calls", () => calls.filter((value) => value > 0).length === 10);
  } finally {
    await worker.stop();
    await broker.close();
    await direct.close();
  }

  // The ack of message 0 may have been lost with the cut, which makes RabbitMQ deliver it again.
  assert.ok(calls.includes(0));
  assert.deepEqual(
    calls.filter((value) => value > 0).sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  const lost = logs.find("warn", "Lost the consumer connection to RabbitMQ at amqp://guest:***@127.0.0.1");
  assert.equal(lost.length, 1);
  const passwords = logs.records.filter((record) => JSON.stringify(record).includes("guest:guest"));
  assert.deepEqual(passwords, [], "no log line contains the password");
  assert.equal(await raw.count(queueName), 0);
});

test("in-flight message is redelivered after cut", async () => {
  const queueName = newQueue("busy_cut");
  const broker = proxiedBroker();
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const calls: string[] = [];
  const task = actor(
    async (label: string) => {
      calls.push(label);
      if (calls.length === 1) {
        await gate;
      }
    },
    { broker, actorName: "task", queueName },
  );

  try {
    await worker.start();
    await task.send("slow");
    await waitFor("the first run", () => calls.length === 1);

    proxy.cut();
    await waitForRecovery(queueName);
    await waitFor("the redelivered run", () => calls.length === 2);

    // The first run ends after the cut; its delivery tag belongs to the lost channel.
    release();
    await worker.join();
    await task.send("fresh");
    await waitFor("the fresh run", () => calls.length === 3);
  } finally {
    release();
    await worker.stop();
    await broker.close();
  }

  assert.deepEqual(calls, ["slow", "slow", "fresh"]);
  const closures = logs.records.filter((record) => /unknown delivery tag|closed the channel of consumer/i.test(record.message));
  assert.deepEqual(closures, [], "no ack reached a channel that did not deliver the message");
  assert.equal(await raw.count(queueName), 0);
});

test("confirmed sends during cuts are all processed", async () => {
  const queueName = newQueue("publish_cut");
  const producerBroker = proxiedBroker({ confirmDelivery: true });
  const workerBroker = new RabbitmqBroker({ url: RABBITMQ_URL });
  const worker = new Worker(workerBroker, { concurrency: 4, shutdownTimeout: 5000 });
  const processed = new Set<number>();
  actor(
    (value: number) => {
      processed.add(value);
    },
    { broker: workerBroker, actorName: "counted", queueName },
  );
  const producer = actor((_value: number) => {}, { broker: producerBroker, actorName: "counted", queueName });

  const resolved: number[] = [];
  const rejected: unknown[] = [];
  try {
    await worker.start();
    for (let index = 0; index < 40; index++) {
      if (index === 10 || index === 25) {
        proxy.cut();
      }
      if (index === 30) {
        proxy.pause();
        proxy.cut();
      }
      if (index === 33) {
        proxy.resume();
      }

      try {
        await producer.send(index);
        resolved.push(index);
      } catch (error) {
        rejected.push(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    await waitFor("every confirmed message to run", () => resolved.every((value) => processed.has(value)));
  } finally {
    proxy.resume();
    await worker.stop();
    await workerBroker.close();
    await producerBroker.close();
  }

  assert.ok(resolved.length >= 30, `most sends resolved (${resolved.length})`);
  assert.ok(rejected.length >= 1, "sends while the server is unreachable reject");
  for (const error of rejected) {
    assert.ok(error instanceof BrokerConnectionError, `typed rejection: ${String(error)}`);
  }
  assert.ok(processed.size >= resolved.length);
});

test("outage rejects sends then worker recovers", async () => {
  const queueName = newQueue("outage");
  const broker = proxiedBroker();
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  const calls: number[] = [];
  const task = actor(
    (value: number) => {
      calls.push(value);
    },
    { broker, actorName: "task", queueName },
  );

  try {
    await worker.start();
    proxy.pause();
    proxy.cut();

    await assert.rejects(task.send(-1), ConnectionFailedError);
    await waitFor("a failed resume attempt", () => logs.find("warn", `Failed to resume consuming '${queueName}'`).length >= 1);

    proxy.resume();
    await waitForRecovery(queueName);
    for (let index = 0; index < 10; index++) {
      await task.send(index);
    }
    await waitFor("ten calls after the outage", () => calls.length === 10);
  } finally {
    proxy.resume();
    await worker.stop();
    await broker.close();
  }

  assert.deepEqual([...calls].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("close stops reconnecting", async () => {
  const queueName = newQueue("close_stop");
  const broker = proxiedBroker();
  const worker = new Worker(broker, { concurrency: 1, shutdownTimeout: 1000 });
  actor(() => {}, { broker, actorName: "task", queueName });

  await worker.start();
  proxy.pause();
  proxy.cut();
  await waitFor("a failed resume attempt", () => logs.find("warn", `Failed to resume consuming '${queueName}'`).length >= 1);

  await worker.stop();
  await broker.close();
  // A connection attempt already under way may still end, refused, against the paused proxy.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const accepted = proxy.acceptedCount;
  const attempts = logs.find("warn", "Failed to resume consuming").length;
  proxy.resume();
  await new Promise((resolve) => setTimeout(resolve, 800));

  assert.equal(proxy.acceptedCount, accepted, "no connection after close()");
  assert.equal(logs.find("warn", "Failed to resume consuming").length, attempts);
  assert.equal(proxy.openCount, 0);
});

test("broker reconnects on demand after close", async () => {
  const queueName = newQueue("reopen");
  const broker = proxiedBroker({ confirmDelivery: true });
  const task = actor(() => {}, { broker, actorName: "task", queueName });
  try {
    await task.send();
    proxy.cut();
    await task.send();
    await broker.close();
    await task.send();
  } finally {
    await broker.close();
  }

  assert.equal(await raw.count(queueName), 3);
});

test("heartbeat timeout on frozen connection recovers", async () => {
  const queueName = newQueue("frozen");
  const broker = proxiedBroker({ heartbeat: 1 });
  const direct = new RabbitmqBroker({ url: RABBITMQ_URL });
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  const calls: number[] = [];
  actor(
    (value: number) => {
      calls.push(value);
    },
    { broker, actorName: "record", queueName },
  );
  const producer = actor((_value: number) => {}, { broker: direct, actorName: "record", queueName });

  try {
    await worker.start();
    proxy.freeze();
    await waitForRecovery(queueName);

    await producer.send(1);
    await waitFor("a call after the partition", () => calls.length === 1);
  } finally {
    await worker.stop();
    await broker.close();
    await direct.close();
  }

  assert.ok(logs.find("warn", "Heartbeat timeout").length >= 1, "the loss names the heartbeat timeout");
});

test("deleted queue is declared again", async () => {
  const queueName = newQueue("deleted");
  const broker = proxiedBroker();
  const direct = new RabbitmqBroker({ url: RABBITMQ_URL });
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  const calls: number[] = [];
  actor(
    (value: number) => {
      calls.push(value);
    },
    { broker, actorName: "record", queueName },
  );
  const producer = actor((_value: number) => {}, { broker: direct, actorName: "record", queueName });

  try {
    await worker.start();
    await raw.channel.deleteQueue(queueName);
    await waitFor("the consumer to resume", () => logs.find("info", `Resumed consuming '${queueName}'`).length === 1);

    await producer.send(1);
    await waitFor("a call after the deletion", () => calls.length === 1);
  } finally {
    await worker.stop();
    await broker.close();
    await direct.close();
  }

  assert.equal(logs.find("warn", `RabbitMQ cancelled the consumer of '${queueName}'`).length, 1);
});
