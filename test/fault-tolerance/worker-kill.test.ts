/**
 * A worker process killed with SIGKILL in the middle of its tasks: each
 * message it was running runs again in another worker and completes once.
 * RabbitMQ returns the unacked deliveries as soon as the connection dies;
 * Redis leaves them in the dead worker's acks set until another worker's
 * maintenance finds its heartbeat older than the heartbeat timeout.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import type { TaskContext } from "../../src/worker/context.js";
import { Worker } from "../../src/worker/worker.js";
import { RABBITMQ_URL } from "../brokers/rabbitmq/support.js";
import { useServers } from "./servers.js";
import { spawnFixture, uniqueName, waitFor, type EventChild } from "./support.js";

const servers = useServers();

interface KillOutcome {
  /** Message ids the killed child had started. */
  readonly startedInChild: string[];
  /** Message ids the recovering worker ran, one entry per run. */
  readonly recovered: string[];
}

/**
 * Sends two long messages, waits until the child runs both, kills it with
 * SIGKILL, then runs a worker on `broker` until both have run there.
 */
async function killMidTask(child: EventChild, broker: Broker, queueName: string): Promise<KillOutcome> {
  const recovered: string[] = [];
  const task = actor(
    function (this: TaskContext, _label: string, _ms: number, _mode: "sleep" | "spin") {
      recovered.push(this.message.messageId);
    },
    { broker, actorName: "task", queueName, maxRetries: 0 },
  );
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });

  try {
    await child.waitForEvent("the child worker to be ready", (event) => event.event === "ready");
    await task.send("first", 60_000, "sleep");
    await task.send("second", 60_000, "sleep");
    await waitFor("the child to start both messages", () => child.events.filter((event) => event.event === "started").length === 2);

    child.process.kill("SIGKILL");
    const exit = await child.waitForExit();
    assert.equal(exit.signal, "SIGKILL");

    await worker.start();
    await waitFor("both messages to run again", () => recovered.length >= 2, 20_000);
    await broker.join(queueName, { timeout: 10_000 });
    await worker.join();
  } finally {
    child.kill();
    await worker.stop();
    await broker.close();
  }

  const startedInChild = child.events.filter((event) => event.event === "started").map((event) => String(event["messageId"]));
  assert.deepEqual(child.events.filter((event) => event.event === "finished"), [], "nothing finished in the killed child");
  return { startedInChild, recovered };
}

test("RabbitMQ worker killed mid-task", async () => {
  const queueName = uniqueName("kill");
  servers.queues.push(queueName);
  const child = spawnFixture("child-worker.ts", { env: { FT_BROKER: "rabbitmq", FT_QUEUE: queueName, FT_CONCURRENCY: "2" } });

  const outcome = await killMidTask(child, new RabbitmqBroker({ url: RABBITMQ_URL }), queueName);

  assert.deepEqual([...outcome.recovered].sort(), [...outcome.startedInChild].sort(), "each killed message ran again exactly once");
  assert.equal(await servers.raw.count(queueName), 0, "the queue is empty");
  assert.equal(await servers.raw.count(`${queueName}.XQ`), 0, "nothing was dead-lettered");
});

test("Redis worker killed mid-task", async () => {
  const namespace = uniqueName("kill");
  servers.namespaces.push(namespace);
  const queueName = "ft_kill";
  const child = spawnFixture("child-worker.ts", {
    env: { FT_BROKER: "redis", FT_NAMESPACE: namespace, FT_QUEUE: queueName, FT_CONCURRENCY: "2", FT_MAINTENANCE_CHANCE: "0" },
  });
  // Maintenance on every call and a 1 s timeout: the dead child's messages come back 1 s after its last heartbeat.
  const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace, heartbeatTimeout: 1000, maintenanceChance: 1_000_000 });
  const ready = child.waitForEvent("the child worker to be ready", (event) => event.event === "ready");

  const outcomePromise = killMidTask(child, broker, queueName);
  const childBrokerId = String((await ready)["brokerId"]);
  const outcome = await outcomePromise;

  assert.deepEqual([...outcome.recovered].sort(), [...outcome.startedInChild].sort(), "each killed message ran again exactly once");
  assert.equal(await servers.admin.exists(`${namespace}:__acks__.${childBrokerId}.${queueName}`), 0, "the dead child's acks set is gone");
  assert.equal(await servers.admin.zscore(`${namespace}:__heartbeats__`, childBrokerId), null, "the dead child left the heartbeats");
  assert.equal(await servers.admin.hlen(`${namespace}:${queueName}.msgs`), 0, "every message was acked");
  assert.equal(await servers.admin.exists(`${namespace}:${queueName}.XQ`), 0, "nothing was dead-lettered");
});
