/**
 * Delays longer than Node's timer limit (2^31 - 1 ms, about 24.8 days) and
 * etas in the past. A longer setTimeout fires after 1 ms with a
 * TimeoutOverflowWarning, so the delay scheduler must wait in steps.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { Message } from "../../src/message/message.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { DelayScheduler } from "../../src/worker/delay-scheduler.js";
import { MessageProxy } from "../../src/worker/message-proxy.js";
import { Worker } from "../../src/worker/worker.js";
import { openRawClient, RABBITMQ_URL, type RawClient } from "../brokers/rabbitmq/support.js";
import { adminClient, deleteNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { uniqueName, waitFor } from "./support.js";

const DAY = 86_400_000;
const MAX_TIMER_DELAY = 2 ** 31 - 1;

let admin: Redis;
let raw: RawClient;
let logs: LogCapture;
const namespaces: string[] = [];
const queues: string[] = [];

before(async () => {
  logs = captureLogs();
  admin = adminClient();
  await admin.connect();
  raw = await openRawClient();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  for (const queueName of queues) {
    await raw.deleteQueueSet(queueName);
  }
  await admin.quit();
  await raw.close();
  logs.restore();
});

function proxy(label: string): MessageProxy {
  return new MessageProxy(new Message({ queueName: "default.DQ", actorName: "later", args: [label] }), "default.DQ");
}

test("scheduler waits 30 days in steps", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_700_000_000_000 });
  const due: unknown[] = [];
  const scheduler = new DelayScheduler((message) => {
    due.push(message.message.args[0]);
  });

  scheduler.hold(proxy("month"), Date.now() + 30 * DAY);
  t.mock.timers.tick(MAX_TIMER_DELAY);
  assert.deepEqual(due, [], "not due when the first timer step ends");

  t.mock.timers.tick(30 * DAY - MAX_TIMER_DELAY - 1);
  assert.deepEqual(due, [], "not due 1 ms early");

  t.mock.timers.tick(1);
  assert.deepEqual(due, ["month"]);
  assert.equal(scheduler.size, 0);
});

test("scheduler releases a past eta at once", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_700_000_000_000 });
  const due: unknown[] = [];
  const scheduler = new DelayScheduler((message) => {
    due.push(message.message.args[0]);
  });

  scheduler.hold(proxy("month"), Date.now() + 30 * DAY);
  scheduler.hold(proxy("past"), Date.now() - DAY);
  t.mock.timers.tick(0);

  assert.deepEqual(due, ["past"], "the past eta is released on the next timer turn; the far one stays");
  assert.equal(scheduler.size, 1);
  scheduler.drain();
});

/** Records the messages the worker starts holding. */
class HeldRecorder extends Middleware {
  readonly held: string[] = [];

  override beforeDelayMessage(_broker: Broker, message: MessageProxy): void {
    this.held.push(message.messageId);
  }
}

interface BrokerCase {
  readonly name: string;
  create(): { broker: Broker; queueName: string; delayedCount: () => Promise<number> };
}

const cases: BrokerCase[] = [
  {
    name: "Redis",
    create() {
      const namespace = uniqueName("delay");
      namespaces.push(namespace);
      return {
        broker: new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace }),
        queueName: "ft_delay",
        delayedCount: () => admin.llen(`${namespace}:ft_delay.DQ`),
      };
    },
  },
  {
    name: "RabbitMQ",
    create() {
      const queueName = uniqueName("delay");
      queues.push(queueName);
      return { broker: new RabbitmqBroker({ url: RABBITMQ_URL }), queueName, delayedCount: () => raw.count(`${queueName}.DQ`) };
    },
  },
];

for (const brokerCase of cases) {
  test(`${brokerCase.name} worker holds a 30-day delay`, async () => {
    const { broker, queueName, delayedCount } = brokerCase.create();
    const recorder = new HeldRecorder();
    broker.addMiddleware(recorder);
    const ran: unknown[] = [];
    const later = actor(
      (label: string) => {
        ran.push(label);
      },
      { broker, actorName: "later", queueName },
    );
    const worker = new Worker(broker, { concurrency: 1, shutdownTimeout: 5000 });
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on("warning", onWarning);

    try {
      await worker.start();
      const far = await later.sendWithOptions({ args: ["far"], delay: 30 * DAY });
      // An eta an hour in the past, as a producer with a slow clock or a backlog leaves it.
      await broker.enqueue(later.message("past"), { delay: 0, now: Date.now() - 3_600_000 });

      await waitFor("the past message to run", () => ran.includes("past"));
      await waitFor("the 30-day message to be held", () => recorder.held.includes(far.messageId));
      // Node emits the warning on a later tick of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));

      assert.deepEqual(ran, ["past"], "the 30-day message did not run early");
      assert.deepEqual(warnings.filter((warning) => warning.name === "TimeoutOverflowWarning"), [], "no TimeoutOverflowWarning");
    } finally {
      process.off("warning", onWarning);
      await worker.stop();
    }

    try {
      await waitFor("the held message back in the delay queue", async () => (await delayedCount()) === 1);
      await broker.flush(queueName);
    } finally {
      await broker.close();
    }
  });
}
