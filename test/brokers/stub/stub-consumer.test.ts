import assert from "node:assert/strict";
import { test } from "node:test";

import { StubBroker } from "../../../src/brokers/stub/index.js";
import { StubConsumer } from "../../../src/brokers/stub/stub-consumer.js";
import { Message } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";

async function nextTurns(count = 3): Promise<void> {
  for (let turn = 0; turn < count; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function message(queueName: string, index: number): Message {
  return new Message({ queueName, actorName: "add", args: [index, index] });
}

test("a delivery of another consumer is not settled by this one", async () => {
  const broker = new StubBroker({ middleware: [] });
  const deliveries: MessageProxy[] = [];
  const consumerA = new StubConsumer(broker, "a", 1);
  const consumerB = broker.consume("b", { prefetch: 1 });
  await broker.enqueue(message("a", 1));
  await consumerA.start((proxy) => deliveries.push(proxy));
  await consumerB.start(() => {});
  await nextTurns();
  assert.equal(deliveries.length, 1);
  const [proxy] = deliveries;
  assert.equal(proxy?.delivery, undefined);
  assert.doesNotThrow(() => JSON.stringify(proxy));

  await consumerB.ack(proxy!);
  proxy!.fail(new Error("boom"));
  await consumerB.nack(proxy!);
  await consumerB.requeue([proxy!]);

  assert.equal(consumerA.outstandingCount, 1);
  assert.deepEqual(broker.deadLettersOf("a"), []);
  assert.equal(await broker.queueDepth("b"), 0);

  await consumerA.nack(proxy!);
  await consumerA.nack(proxy!);
  assert.equal(consumerA.outstandingCount, 0);
  assert.equal(broker.deadLettersOf("a").length, 1, "one nack dead-letters once");
  await consumerA.close();
  await consumerB.close();
});

test("requeue and close return the bodies in delivery order", async () => {
  const broker = new StubBroker({ middleware: [] });
  const deliveries: MessageProxy[] = [];
  const consumer = broker.consume("q", { prefetch: 3 });
  for (const index of [1, 2, 3, 4]) {
    await broker.enqueue(message("q", index));
  }
  await consumer.start((proxy) => deliveries.push(proxy));
  await nextTurns();
  assert.deepEqual(
    deliveries.map((proxy) => proxy.message.args[0]),
    [1, 2, 3],
  );

  await consumer.ack(deliveries[1]!);
  await consumer.close();

  assert.equal(deliveries[0]!.abandoned, true);
  assert.equal(deliveries[1]!.abandoned, false);
  const bodies = broker.queue("q").bodies.map((body) => Message.decode(body).args[0]);
  assert.deepEqual(bodies, [1, 3, 4]);
});
