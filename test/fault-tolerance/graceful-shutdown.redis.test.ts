/**
 * Graceful shutdown of a CLI worker process on Redis under load: prefetched
 * messages go back to the queue, running ones finish (or, after the
 * shutdown timeout or a second SIGTERM, are delivered again), and no acks
 * set is left behind.
 */

import { after, before } from "node:test";

import type { Redis } from "ioredis";

import { RedisBroker } from "../../src/brokers/redis/index.js";
import { Message } from "../../src/message/message.js";
import { adminClient, deleteNamespace, namespaceKeys } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { defineShutdownTests, type ShutdownTarget } from "./shutdown-scenario.js";
import { uniqueName } from "./support.js";

let admin: Redis;
let logs: LogCapture;
const namespaces: string[] = [];

before(async () => {
  logs = captureLogs();
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  await admin.quit();
  logs.restore();
});

function redisTarget(): ShutdownTarget {
  const namespace = uniqueName("stop");
  namespaces.push(namespace);
  const queueName = "ft_stop";

  const read = async (name: string): Promise<Message[]> => {
    const ids = await admin.lrange(`${namespace}:${name}`, 0, -1);
    const bodies = await Promise.all(ids.map((id) => admin.hgetBuffer(`${namespace}:${name}.msgs`, id)));
    return bodies.map((body) => Message.decode(body!));
  };

  return {
    env: { FT_BROKER: "redis", FT_NAMESPACE: namespace, FT_QUEUE: queueName },
    queueName,
    // A short heartbeat timeout and maintenance on every call, so the broker
    // that runs the leftovers takes a killed worker's messages back within a second.
    createBroker: () => new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 1000, maintenanceChance: 1_000_000 }),
    waiting: () => read(queueName),
    delayed: () => read(`${queueName}.DQ`),
    deadLettered: () => admin.zcard(`${namespace}:${queueName}.XQ`),
    leftoverKeys: async () => (await namespaceKeys(admin, namespace)).filter((key) => key.startsWith(`${namespace}:__acks__.`)),
  };
}

defineShutdownTests("Redis", redisTarget);
