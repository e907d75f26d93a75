import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { actor } from "../../../src/actor.js";
import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { queueDeclarations } from "../../../src/brokers/rabbitmq/declaration.js";
import { ConfigurationError } from "../../../src/errors.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { loadVector } from "../../helpers/vectors.js";
import { listQueues, openRawClient, RABBITMQ_URL, uniqueQueueName, waitFor, type ListedQueue, type RawClient } from "./support.js";

interface VectorQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: [string, string, unknown][];
  messages: number;
}

interface EquivalenceResult {
  label: string;
  ok: boolean;
  reply_code?: number;
  reply_text?: string;
}

const vector = loadVector("rabbitmq-queues") as {
  queues_after_enqueue: VectorQueue[];
  priority_queue: { queues: VectorQueue[] };
  declare_equivalence: { results: EquivalenceResult[] };
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

/** Renames the vector's queue (`spec_default`, `spec_prio`) to the test's queue, in names and argument values. */
function renameQueue(queue: VectorQueue, from: string, to: string): VectorQueue {
  const rename = (text: string): string => text.replace(from, to);
  return {
    ...queue,
    name: rename(queue.name),
    arguments: queue.arguments.map(([name, type, value]) => [name, type, typeof value === "string" ? rename(value) : value]),
  };
}

/** Converts `rabbitmqctl` argument triples to an amqplib arguments table with the same AMQP types. */
function toAmqplibArguments(queueArguments: [string, string, unknown][]): Record<string, unknown> {
  const table: Record<string, unknown> = {};
  for (const [name, type, value] of queueArguments) {
    table[name] = type === "signedint" ? { "!": "int", value } : value;
  }
  return table;
}

function pick(listed: ListedQueue[], names: string[]): VectorQueue[] {
  return names.map((name) => {
    const queue = listed.find((entry) => entry.name === name);
    assert.ok(queue, `queue ${name} is listed`);
    return queue;
  });
}

async function sendOne(broker: RabbitmqBroker, queueName: string, options: Record<string, unknown> = {}): Promise<void> {
  const add = actor((a: number, b: number) => a + b, { broker, actorName: `add_${queueName}`, queueName });
  await add.sendWithOptions({ args: [1, 2], ...options });
}

test("declared queues match vector", async (t) => {
  const queueName = newQueue("declare");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  try {
    await sendOne(broker, queueName);
  } finally {
    await broker.close();
  }

  const listed = await listQueues();
  if (listed === undefined) {
    t.skip("rabbitmqctl cannot list queues from this account");
    return;
  }

  const expected = vector.queues_after_enqueue.map((queue) => renameQueue(queue, "spec_default", queueName));
  assert.deepEqual(pick(listed, [queueName, `${queueName}.DQ`, `${queueName}.XQ`]), expected);
});

test("priority queues match vector", async (t) => {
  const queueName = newQueue("prio");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxPriority: 10 });
  try {
    await sendOne(broker, queueName, { brokerPriority: 5 });
  } finally {
    await broker.close();
  }

  const expected = vector.priority_queue.queues.map((queue) => renameQueue(queue, "spec_prio", queueName));
  for (const queue of expected) {
    // Passes only if RabbitMQ finds the arguments equivalent to what the broker declared.
    await raw.channel.assertQueue(queue.name, { durable: true, arguments: toAmqplibArguments(queue.arguments) });
  }

  const listed = await listQueues();
  if (listed === undefined) {
    t.skip("rabbitmqctl cannot list queues from this account");
    return;
  }
  assert.deepEqual(pick(listed, expected.map((queue) => queue.name)), expected);
});

test("declaration arguments for custom TTL", () => {
  const [main, delayed, dead] = queueDeclarations("jobs", { maxPriority: undefined, deadMessageTtl: 86_400_000 });

  assert.deepEqual(main?.options.arguments, { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.XQ" });
  assert.deepEqual(delayed?.options.arguments, { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.XQ" });
  assert.equal(delayed?.queueName, "jobs.DQ");
  assert.equal(dead?.queueName, "jobs.XQ");
  assert.deepEqual(dead?.options.arguments, { "x-message-ttl": { "!": "int", value: 86_400_000 } });
  assert.equal(dead?.options.durable, true);
});

test("declaration types large TTL as long", () => {
  const dead = queueDeclarations("jobs", { maxPriority: 3, deadMessageTtl: 2 ** 32 })[2];

  assert.deepEqual(dead?.options.arguments, { "x-message-ttl": { "!": "long", value: 2 ** 32 } });
});

test("declare equivalence matches vector", async () => {
  const queueName = newQueue("equiv");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  try {
    await sendOne(broker, queueName);
  } finally {
    await broker.close();
  }

  const dramatiqArguments = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queueName}.XQ` };
  const attempts: Record<string, () => Promise<unknown>> = {
    "same arguments as dramatiq": () => raw.channel.assertQueue(queueName, { durable: true, arguments: dramatiqArguments }),
    "no arguments": () => raw.channel.assertQueue(queueName, { durable: true }),
    "durable=False": () => raw.channel.assertQueue(queueName, { durable: false, arguments: dramatiqArguments }),
    "extra x-max-priority": () =>
      raw.channel.assertQueue(queueName, { durable: true, arguments: { ...dramatiqArguments, "x-max-priority": { "!": "int", value: 10 } } }),
    "passive declare": () => raw.channel.checkQueue(queueName),
    "XQ with x-message-ttl as AMQP 'I'": () =>
      raw.channel.assertQueue(`${queueName}.XQ`, { durable: true, arguments: { "x-message-ttl": { "!": "int", value: 604800000 } } }),
    "XQ with x-message-ttl as AMQP 'l'": () =>
      raw.channel.assertQueue(`${queueName}.XQ`, { durable: true, arguments: { "x-message-ttl": { "!": "long", value: 604800000 } } }),
    "XQ with a different x-message-ttl": () =>
      raw.channel.assertQueue(`${queueName}.XQ`, { durable: true, arguments: { "x-message-ttl": { "!": "int", value: 1000 } } }),
    "XQ without x-message-ttl": () => raw.channel.assertQueue(`${queueName}.XQ`, { durable: true }),
  };

  for (const result of vector.declare_equivalence.results) {
    const key = Object.keys(attempts).find((prefix) => result.label.startsWith(prefix));
    assert.ok(key !== undefined, `a reproduction exists for vector case '${result.label}'`);

    const outcome = await attempts[key]!().then(
      () => undefined,
      (error: unknown) => error as Error & { code?: number },
    );
    if (result.ok) {
      assert.equal(outcome, undefined, `${result.label}: accepted`);
      continue;
    }

    assert.ok(outcome !== undefined, `${result.label}: refused`);
    assert.equal(outcome.code, result.reply_code, `${result.label}: reply code`);
    const replyText = (result.reply_text ?? "").replaceAll("spec_default", queueName);
    assert.ok(outcome.message.includes(replyText), `${result.label}: '${outcome.message}' contains '${replyText}'`);
    await raw.freshChannel();
  }
});

test("publish explains priority mismatch", async () => {
  const queueName = newQueue("mismatch_prio");
  const dramatiqArguments = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queueName}.XQ` };
  await raw.channel.assertQueue(queueName, { durable: true, arguments: { ...dramatiqArguments, "x-max-priority": { "!": "int", value: 10 } } });

  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  try {
    await assert.rejects(sendOne(broker, queueName), (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, new RegExp(`Queue '${queueName}'`));
      assert.match(error.message, /'x-max-priority'/);
      assert.match(error.message, /set maxPriority/);
      return true;
    });

    // The refused declaration closed only the broker's declaration channel.
    const other = newQueue("after_mismatch");
    await sendOne(broker, other);
    await waitFor(`a message in ${other}`, async () => (await raw.count(other)) === 1);
  } finally {
    await broker.close();
  }
});

test("publish explains dead letter TTL mismatch", async () => {
  const queueName = newQueue("mismatch_ttl");
  await raw.channel.assertQueue(`${queueName}.XQ`, { durable: true, arguments: { "x-message-ttl": { "!": "int", value: 1000 } } });

  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  try {
    await assert.rejects(sendOne(broker, queueName), (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, /'x-message-ttl'/);
      assert.match(error.message, /deadMessageTtl/);
      assert.match(error.message, /dramatiq_dead_message_ttl/);
      return true;
    });
  } finally {
    await broker.close();
  }
});

test("consumer start explains mismatch", async () => {
  const queueName = newQueue("mismatch_consume");
  await raw.channel.assertQueue(queueName, { durable: true });

  const broker = new RabbitmqBroker({ url: RABBITMQ_URL });
  try {
    const consumer = broker.consume(queueName, { prefetch: 1 });
    await assert.rejects(
      consumer.start(() => {}),
      (error: unknown) => error instanceof ConfigurationError && /'x-dead-letter-exchange'/.test(error.message),
    );
  } finally {
    await broker.close();
  }
});

test("priority broker declares priority queues", async () => {
  const queueName = newQueue("maxprio");
  const broker = new RabbitmqBroker({ url: RABBITMQ_URL, maxPriority: 5 });
  try {
    await sendOne(broker, queueName);
  } finally {
    await broker.close();
  }

  const dramatiqArguments = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queueName}.XQ` };
  await raw.channel.assertQueue(`${queueName}.DQ`, { durable: true, arguments: { ...dramatiqArguments, "x-max-priority": 5 } });
  await raw.channel.assertQueue(`${queueName}.XQ`, { durable: true, arguments: { "x-message-ttl": 604800000 } });
  await assert.rejects(raw.channel.assertQueue(queueName, { durable: true, arguments: dramatiqArguments }), /x-max-priority/);
  await raw.freshChannel();
});
