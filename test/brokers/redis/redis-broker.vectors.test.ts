/**
 * Replays the captured Redis vector through the RedisBroker API. The same
 * messages (ids and timestamps from the capture, redis_message_id forced to
 * the captured values) are enqueued, fetched, acked, nacked, requeued,
 * released and recovered. The dispatch ARGV and the resulting keys must
 * equal what Python Dramatiq produced, except for real clock readings
 * (ARGV[2], zset scores) and broker ids, which are mapped.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import type { BrokerRedisClient } from "../../../src/brokers/redis/client.js";

import { RedisBroker, type RedisBrokerOptions } from "../../../src/brokers/redis/index.js";
import type { RedisConsumer } from "../../../src/brokers/redis/index.js";
import { Message, type MessageDict } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";
import { loadVector } from "../../helpers/vectors.js";
import { adminClient, deleteNamespace, REDIS_URL, snapshotNamespace, uniqueNamespace, waitFor, type KeySnapshot } from "./helpers.js";

interface ScriptCall {
  argv: string[];
}

interface Step {
  step: string;
  clock_ms: number;
  result: { message?: MessageDict; processed_message_options_after_middleware?: Record<string, unknown> } | null;
  script_calls: ScriptCall[];
  keys_after: Record<string, KeySnapshot>;
}

interface RecordedCall {
  readonly argv: string[];
  readonly reply: unknown;
}

const vector = loadVector("redis-enqueue") as { steps: Step[] };
const steps = new Map(vector.steps.map((step) => [step.step, step]));

/** A RedisBroker that records its dispatch calls and uses the redis_message_ids queued in `forcedIds` first. */
class RecordingRedisBroker extends RedisBroker {
  readonly forcedIds: string[] = [];

  constructor(
    options: RedisBrokerOptions,
    private readonly log: RecordedCall[],
  ) {
    super(options);
  }

  protected override prepareForQueue(message: Message): Message {
    const prepared = super.prepareForQueue(message);
    const forced = this.forcedIds.shift();
    return forced === undefined ? prepared : prepared.copy({ options: { ...prepared.options, redis_message_id: forced } });
  }

  protected override async runDispatch(client: BrokerRedisClient, argv: readonly (string | Buffer)[]): Promise<unknown> {
    const reply = await super.runDispatch(client, argv);
    this.log.push({ argv: argv.map((value) => value.toString()), reply });
    return reply;
  }
}

function step(name: string): Step {
  const found = steps.get(name);
  assert.ok(found, `vector step ${name} exists`);
  return found;
}

function inputMessage(dict: MessageDict): Message {
  return new Message({
    queueName: dict.queue_name.replace(/\.DQ$/, ""),
    actorName: dict.actor_name,
    args: dict.args,
    kwargs: dict.kwargs,
    options: {},
    messageId: dict.message_id,
    messageTimestamp: dict.message_timestamp,
  });
}

function redisIdOf(dict: MessageDict): string {
  return dict.options["redis_message_id"] as string;
}

test("RedisBroker reproduces the captured Redis vector", async () => {
  const namespace = uniqueNamespace("vectors");
  const admin = adminClient();
  const log: RecordedCall[] = [];
  const options = { url: REDIS_URL, namespace, middleware: [], maintenanceChance: 0 };
  const producer = new RecordingRedisBroker(options, log);
  const deadWorker = new RecordingRedisBroker(options, log);
  const maintainer = new RecordingRedisBroker({ ...options, deadMessageTtl: 60_000, maintenanceChance: 1_000_000 }, log);
  const brokerIds = new Map([
    ["0000cccc-0000-4000-8000-000000000001", producer.brokerId],
    ["0000cccc-0000-4000-8000-00000000000d", deadWorker.brokerId],
    ["0000cccc-0000-4000-8000-00000000000e", maintainer.brokerId],
  ]);
  const vectorIdOf = new Map([...brokerIds].map(([vectorId, id]) => [id, vectorId]));
  const consumers: RedisConsumer[] = [];

  /** Starts a consumer, waits for `count` deliveries and stops its fetching. */
  const fetchWith = async (queueName: string, prefetch: number, count = 1): Promise<{ consumer: RedisConsumer; messages: MessageProxy[] }> => {
    const consumer = producer.consume(queueName, { prefetch });
    consumers.push(consumer);
    const messages: MessageProxy[] = [];
    await consumer.start((message) => messages.push(message));
    await waitFor(`${count} delivery(ies) from ${queueName}`, () => messages.length >= count);
    await consumer.cancel();
    return { consumer, messages };
  };

  /** Compares the calls recorded since the last check, minus empty polls, and the keys with the vector step. */
  const check = async (name: string): Promise<void> => {
    const expected = step(name);
    const calls = log.splice(0).filter((call) => !(call.argv[0] === "fetch" && Array.isArray(call.reply) && call.reply.length === 0));
    const batchSize = String(await producer.batchSize());

    assert.equal(calls.length, expected.script_calls.length, `${name}: number of dispatch calls`);
    for (const [index, call] of expected.script_calls.entries()) {
      const wanted = [...call.argv];
      wanted[1] = calls[index]!.argv[1]!; // the capture's frozen clock
      wanted[3] = brokerIds.get(wanted[3]!) ?? wanted[3]!;
      wanted[7] = batchSize; // Python's probe finds 3996 on the same server; see scripts.ts
      assert.deepEqual(calls[index]!.argv, wanted, `${name}: ARGV of call ${index + 1}`);
    }

    const actual = await snapshotNamespace(admin, namespace);
    assert.deepEqual(normalize(actual, (id) => vectorIdOf.get(id) ?? id), normalize(expected.keys_after, (id) => id), `${name}: keys after the step`);
  };

  try {
    await admin.connect();

    // enqueue
    const enqueued = step("enqueue").result!.message!;
    producer.forcedIds.push(redisIdOf(enqueued));
    const sent = await producer.enqueue(inputMessage(enqueued));
    assert.deepEqual(sent.toDict(), enqueued);
    await check("enqueue");

    // enqueue_delayed: the eta is computed from the capture's clock.
    const delayed = step("enqueue_delayed").result!.message!;
    producer.forcedIds.push(redisIdOf(delayed));
    await producer.enqueue(inputMessage(delayed), { delay: 10_000, now: step("enqueue_delayed").clock_ms });
    await check("enqueue_delayed");

    // fetch, ack
    const first = await fetchWith("spec_default", 2);
    assert.deepEqual(first.messages[0]!.message.toDict(), step("fetch").result!.message);
    await check("fetch");
    await first.consumer.ack(first.messages[0]!);
    await check("ack");

    // nack
    const failing = step("nack").result!.message!;
    producer.forcedIds.push(redisIdOf(failing));
    await producer.enqueue(inputMessage(failing));
    const nacked = await fetchWith("spec_default", 2);
    await nacked.consumer.nack(nacked.messages[0]!);
    await check("nack");

    // requeue
    const returned = step("requeue").result!.message!;
    producer.forcedIds.push(redisIdOf(returned));
    await producer.enqueue(inputMessage(returned));
    const requeued = await fetchWith("spec_default", 2);
    await requeued.consumer.requeue(requeued.messages);
    await check("requeue");

    // Between steps the capture fetched and acked the requeued message.
    const again = await fetchWith("spec_default", 2);
    assert.equal(again.messages[0]!.messageId, returned.message_id);
    await again.consumer.ack(again.messages[0]!);
    log.length = 0;

    // dq_fetch, dq_release: the worker enqueues a copy without eta, then acks the .DQ delivery.
    const held = await fetchWith("spec_default.DQ", 8000);
    assert.deepEqual(held.messages[0]!.message.toDict(), step("dq_fetch").result!.message);
    await check("dq_fetch");
    const releaseArgs = step("dq_release").script_calls[0]!.argv;
    producer.forcedIds.push(releaseArgs[8]!);
    const { eta: _eta, ...releasedOptions } = held.messages[0]!.options;
    await producer.enqueue(held.messages[0]!.message.copy({ queueName: "spec_default", options: releasedOptions }));
    await held.consumer.ack(held.messages[0]!);
    await check("dq_release");

    // Between steps the capture's worker ran and acked the released message.
    const released = await fetchWith("spec_default", 2);
    await released.consumer.ack(released.messages[0]!);
    log.length = 0;

    // retry_after_failure: Retries stamps the options, re-enqueues with a backoff delay, and the original is acked.
    const retryStep = step("retry_after_failure");
    const retried = Message.decode(retryStep.script_calls[0]!.argv[9]!);
    producer.forcedIds.push(redisIdOf(retried.toDict()), retryStep.script_calls[2]!.argv[8]!);
    await producer.enqueue(inputMessage(retried.toDict()));
    const failed = await fetchWith("spec_default", 2);
    const stamped = retryStep.result!.processed_message_options_after_middleware!;
    await producer.enqueue(failed.messages[0]!.message.copy({ options: { ...stamped } }), { delay: 17_888, now: retryStep.clock_ms });
    await failed.consumer.ack(failed.messages[0]!);
    await check("retry_after_failure");

    // Between steps the capture emptied the delay queue.
    await admin.del(`${namespace}:spec_default.DQ`, `${namespace}:spec_default.DQ.msgs`);

    // dead_worker_prepare: a second broker enqueues and fetches, then never calls again.
    const orphan = step("dead_worker_prepare").result!.message!;
    deadWorker.forcedIds.push(redisIdOf(orphan));
    await deadWorker.enqueue(inputMessage(orphan));
    const orphaned = await deadWorker.fetch("spec_default", 1);
    assert.equal(orphaned.length, 1);
    await check("dead_worker_prepare");

    // maintenance, 61 s later: closed consumers stop the producer's heartbeat timer first.
    for (const consumer of consumers) {
      await consumer.close();
    }
    log.length = 0;
    const size = await maintainer.dispatch("qsize", "spec_default", [], { now: Date.now() + 61_000 });
    assert.equal(size, 1);
    await check("maintenance");

    // purge
    await producer.flush("spec_default");
    await check("purge");
  } finally {
    for (const consumer of consumers) {
      await consumer.close();
    }
    await Promise.all([producer.close(), deadWorker.close(), maintainer.close()]);
    await deleteNamespace(admin, namespace);
    await admin.quit();
  }
});

/** Renames broker ids in key names and members, and drops zset scores, which are clock readings. */
function normalize(keys: Record<string, KeySnapshot>, mapId: (id: string) => string): Record<string, unknown> {
  const renameIds = (text: string): string => text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => mapId(id));
  const result: Record<string, unknown> = {};
  for (const [name, snapshot] of Object.entries(keys)) {
    const value = snapshot.type === "zset" ? (snapshot.value as [string, number][]).map(([member]) => renameIds(member)).sort() : snapshot.value;
    result[renameIds(name)] = { type: snapshot.type, pttl_ms: snapshot.pttl_ms, value };
  }
  return result;
}
