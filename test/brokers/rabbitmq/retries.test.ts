/**
 * Retries on the wire: a failed message travels through `<q>.DQ` with its
 * eta and retry options, keeps its id, and ends in `<q>.XQ` once its
 * retries are exhausted, as on a Python worker.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../../src/actor.js";
import type { Broker } from "../../../src/broker.js";
import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { Message } from "../../../src/message/message.js";
import { Middleware } from "../../../src/middleware/middleware.js";
import { Retries } from "../../../src/middleware/retries.js";
import { currentMessage } from "../../../src/worker/context.js";
import { Worker } from "../../../src/worker/worker.js";
import { captureLogs } from "../../helpers/logs.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor } from "./support.js";

/** Records every message the broker enqueues. */
class EnqueueRecorder extends Middleware {
  readonly enqueued: Message[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }
}

test("retries travel through delay queue", async () => {
  const logs = captureLogs();
  const queueName = uniqueQueueName("retries");
  const recorder = new EnqueueRecorder();
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, confirmDelivery: true, middleware: [new Retries(), recorder] });
  const raw = await openRawClient();
  const seen: { id: string | undefined; retries: unknown }[] = [];
  const flaky = actor(
    () => {
      seen.push({ id: currentMessage()?.messageId, retries: currentMessage()?.options["retries"] });
      throw new Error("always failing");
    },
    { broker, actorName: "flaky", queueName, maxRetries: 2, minBackoff: 20, maxBackoff: 100 },
  );
  const worker = new Worker(broker, { concurrency: 2 });

  try {
    await worker.start();
    const sent = await flaky.send();
    await waitFor("the message to reach the dead-letter queue", async () => (await raw.count(`${queueName}.XQ`)) === 1, 20_000);

    assert.deepEqual(seen, [
      { id: sent.messageId, retries: undefined },
      { id: sent.messageId, retries: 1 },
      { id: sent.messageId, retries: 2 },
    ]);

    const retried = recorder.enqueued.filter((message) => message.queueName === `${queueName}.DQ`);
    assert.equal(retried.length, 2);
    for (const [index, message] of retried.entries()) {
      const delay = (message.options["eta"] as number) - (message.options["requeue_timestamp"] as number);
      assert.ok(delay >= 20, `retry ${index + 1} delay ${delay}`);
      assert.ok(delay <= 100, `retry ${index + 1} delay ${delay}`);
      assert.equal(message.options["retries"], index + 1);
      assert.equal(typeof message.options["traceback"], "string");
    }

    const [dead] = await raw.drain(`${queueName}.XQ`);
    assert.ok(dead !== undefined);
    const deadMessage = Message.decode(dead.content);
    assert.equal(deadMessage.messageId, sent.messageId);
    assert.equal(deadMessage.queueName, queueName);
    assert.equal(deadMessage.options["retries"], 2);
    assert.equal(logs.find("warn", "Retries exceeded").length, 1);
  } finally {
    await worker.stop();
    await broker.close();
    await raw.deleteQueueSet(queueName);
    await raw.close();
    logs.restore();
  }
});
