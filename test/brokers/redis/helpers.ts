/** Shared helpers of the Redis broker tests: namespaces, key snapshots, bounded waits. */

import { randomUUID } from "node:crypto";

import { Redis } from "ioredis";

export const REDIS_URL = "redis://127.0.0.1:6379/0";

/** Returns a namespace no other test uses, so test files can run in parallel. */
export function uniqueNamespace(label: string): string {
  return `melotest-${label}-${randomUUID().slice(0, 8)}`;
}

/** Returns a plain client for setting up and inspecting keys; close it with `quit()`. */
export function adminClient(): Redis {
  return new Redis(REDIS_URL, { lazyConnect: true });
}

/** Lists every key of `namespace`; namespaces made by `uniqueNamespace` contain no glob characters. */
export async function namespaceKeys(client: Redis, namespace: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  for (let round = 0; round < 10_000; round += 1) {
    const [next, batch] = await client.scan(cursor, "MATCH", `${namespace}:*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
    if (cursor === "0") {
      break;
    }
  }
  return keys.sort();
}

/** Deletes every key of `namespace`. */
export async function deleteNamespace(client: Redis, namespace: string): Promise<void> {
  const keys = await namespaceKeys(client, namespace);
  if (keys.length > 0) {
    await client.del(...keys);
  }
}

/** A key as the vectors describe it. Zset members come with scores; set members are sorted. */
export interface KeySnapshot {
  type: string;
  value: unknown;
  pttl_ms: number;
}

/** Reads every key of `namespace`, named with `prefix` in place of the namespace (e.g. "dramatiq"). */
export async function snapshotNamespace(client: Redis, namespace: string, prefix = "dramatiq"): Promise<Record<string, KeySnapshot>> {
  const snapshot: Record<string, KeySnapshot> = {};
  for (const key of await namespaceKeys(client, namespace)) {
    const name = `${prefix}${key.slice(namespace.length)}`;
    snapshot[name] = await readKey(client, key);
  }
  return snapshot;
}

async function readKey(client: Redis, key: string): Promise<KeySnapshot> {
  const type = await client.type(key);
  const pttl = await client.pttl(key);
  switch (type) {
    case "list":
      return { type, value: await client.lrange(key, 0, -1), pttl_ms: pttl };
    case "hash":
      return { type, value: await client.hgetall(key), pttl_ms: pttl };
    case "set":
      return { type, value: (await client.smembers(key)).sort(), pttl_ms: pttl };
    case "zset": {
      const flat = await client.zrange(key, 0, -1, "WITHSCORES");
      const pairs: [string, number][] = [];
      for (let index = 0; index < flat.length; index += 2) {
        pairs.push([flat[index]!, Number(flat[index + 1])]);
      }
      return { type, value: pairs, pttl_ms: pttl };
    }
    default:
      return { type, value: await client.get(key), pttl_ms: pttl };
  }
}

/** Writes keys given in the vectors' form under `namespace` (their names start with `prefix`). */
export async function loadSnapshot(client: Redis, namespace: string, keys: Record<string, KeySnapshot>, prefix = "dramatiq"): Promise<void> {
  for (const [name, { type, value }] of Object.entries(keys)) {
    const key = `${namespace}${name.slice(prefix.length)}`;
    await client.del(key);
    if (type === "list") {
      await client.rpush(key, ...(value as string[]));
    } else if (type === "hash") {
      await client.hset(key, value as Record<string, string>);
    } else if (type === "set") {
      await client.sadd(key, ...(value as string[]));
    } else if (type === "zset") {
      for (const [member, score] of value as [string, number][]) {
        await client.zadd(key, String(score), member);
      }
    } else {
      throw new Error(`loadSnapshot: unsupported key type ${type} for ${name}`);
    }
  }
}

/** Polls `check` every 20 ms until it returns true; fails with `what` after `timeout` ms. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${what}.`);
    }
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
