/**
 * Replays every dispatch call that Python Dramatiq made in the captured
 * Redis vector through our own dispatch.lua, with the exact ARGV. Each step
 * starts from the key state the capture recorded before it. The replies and
 * the resulting keys must equal the capture's.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { getDispatchScript } from "../../../src/brokers/redis/scripts.js";
import { loadVector } from "../../helpers/vectors.js";
import { adminClient, deleteNamespace, loadSnapshot, snapshotNamespace, uniqueNamespace, type KeySnapshot } from "./helpers.js";

interface ScriptCall {
  keys: string[];
  argv: string[];
  result: unknown;
}

interface Step {
  step: string;
  script_calls: ScriptCall[];
  keys_after: Record<string, KeySnapshot>;
}

const vector = loadVector("redis-enqueue") as { steps: Step[] };
let client: Redis;
const namespaces: string[] = [];

before(async () => {
  client = adminClient();
  await client.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(client, namespace);
  }
  await client.quit();
});

/**
 * Changes the capture made between two steps without recording them as
 * script calls; each step starts from the previous step's keys with these
 * applied.
 */
const unrecordedChanges: Record<string, (state: Record<string, KeySnapshot>) => void> = {
  // The capture fetched and acked the message that the requeue step put back.
  dq_fetch: (state) => {
    removeMessage(state, "spec_default", "0000aaaa-0000-4000-8000-000000000005");
  },
  // The capture's worker ran and acked the message that dq_release re-enqueued.
  retry_after_failure: (state) => {
    removeMessage(state, "spec_default", "0000aaaa-0000-4000-8000-000000000006");
  },
  // The capture emptied the delay queue, which held the retried copy.
  dead_worker_prepare: (state) => {
    delete state["dramatiq:spec_default.DQ"];
    delete state["dramatiq:spec_default.DQ.msgs"];
  },
};

/** Removes one message from a queue's list and hash, dropping keys left empty as Redis does. */
function removeMessage(state: Record<string, KeySnapshot>, queue: string, redisMessageId: string): void {
  const list = state[`dramatiq:${queue}`];
  if (list !== undefined) {
    list.value = (list.value as string[]).filter((id) => id !== redisMessageId);
    if ((list.value as string[]).length === 0) {
      Reflect.deleteProperty(state, `dramatiq:${queue}`);
    }
  }

  const hash = state[`dramatiq:${queue}.msgs`];
  if (hash !== undefined) {
    const { [redisMessageId]: _removed, ...rest } = hash.value as Record<string, string>;
    hash.value = rest;
    if (Object.keys(rest).length === 0) {
      Reflect.deleteProperty(state, `dramatiq:${queue}.msgs`);
    }
  }
}

function startState(index: number): Record<string, KeySnapshot> {
  if (index === 0) {
    return {};
  }

  const step = vector.steps[index]!;
  const state = structuredClone(vector.steps[index - 1]!.keys_after);
  unrecordedChanges[step.step]?.(state);
  return state;
}

function decodeReply(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) {
    return reply.toString("utf8");
  }
  if (Array.isArray(reply)) {
    return reply.map((item) => decodeReply(item));
  }
  return reply;
}

for (const [index, step] of vector.steps.entries()) {
  test(`dispatch.lua replays step ${step.step}`, async () => {
    const namespace = uniqueNamespace(`script-${step.step}`);
    namespaces.push(namespace);
    await loadSnapshot(client, namespace, startState(index));

    for (const call of step.script_calls) {
      assert.deepEqual(call.keys, ["dramatiq"]);
      const reply = decodeReply(await getDispatchScript().run(client, [namespace], call.argv));

      if (call.argv[0] === "fetch") {
        // Our fetch returns [ids, bodies]; Python's returns the bodies only.
        const [ids, bodies] = reply as [string[], (string | null)[]];
        assert.deepEqual(bodies, call.result, `${step.step}: fetched bodies`);
        const bodyIds = (call.result as string[]).map((body) => (JSON.parse(body) as { options: { redis_message_id: string } }).options.redis_message_id);
        assert.deepEqual(ids, bodyIds, `${step.step}: fetched ids`);
      } else {
        assert.deepEqual(reply, call.result, `${step.step}: reply of ${call.argv[0]}`);
      }
    }

    assert.deepEqual(await snapshotNamespace(client, namespace), step.keys_after, `${step.step}: keys after the step`);
  });
}

test("dispatch.lua rejects unknown command", async () => {
  const namespace = uniqueNamespace("script-unknown");
  namespaces.push(namespace);
  await assert.rejects(
    getDispatchScript().run(client, [namespace], ["frobnicate", "1", "q", "b", "60000", "1000", "0", "10"]),
    /unknown dispatch command 'frobnicate'/,
  );
});

test("dispatch.lua expires dead letters in batches", async () => {
  const namespace = uniqueNamespace("script-expiry");
  namespaces.push(namespace);
  const ids = Array.from({ length: 25 }, (_, index) => `id-${index}`);
  for (const id of ids) {
    await client.zadd(`${namespace}:q.XQ`, "1000", id);
    await client.hset(`${namespace}:q.XQ.msgs`, id, "{}");
  }
  await client.zadd(`${namespace}:q.XQ`, "5000", "fresh");
  await client.hset(`${namespace}:q.XQ.msgs`, "fresh", "{}");

  // Batch size 4 forces seven ZREM/HDEL slices; dead-message TTL 3000 at now=6000 expires scores up to 3000.
  await getDispatchScript().run(client, [namespace], ["qsize", "6000", "q", "b", "60000", "3000", "1", "4"]);

  assert.deepEqual(await client.zrange(`${namespace}:q.XQ`, 0, -1), ["fresh"]);
  assert.deepEqual(Object.keys(await client.hgetall(`${namespace}:q.XQ.msgs`)), ["fresh"]);
});

test("dispatch.lua escapes glob characters in namespace", async () => {
  const base = uniqueNamespace("script-glob");
  const namespace = `${base}[x]*`;
  const other = `${base}x`;
  namespaces.push(base);
  try {
    // A dead broker with acks only under the look-alike namespace "<base>x"
    // must still be forgotten in "<base>[x]*": the pattern must not match it.
    await client.zadd(`${namespace}:__heartbeats__`, "1", "dead");
    await client.sadd(`${other}:__acks__.dead.q`, "m1");
    await getDispatchScript().run(client, [namespace], ["qsize", "100000", "q", "live", "1000", "1000", "1", "10"]);
    assert.deepEqual(await client.zrange(`${namespace}:__heartbeats__`, 0, -1), ["live"]);
  } finally {
    await client.del(`${namespace}:__heartbeats__`, `${other}:__acks__.dead.q`);
  }
});
