/**
 * The Redis broker with bad input and failures: raw bodies in Python's
 * layout that are broken or foreign, a worker busier than the heartbeat
 * timeout, a worker killed with SIGKILL, and a connection cut by a proxy.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../../src/actor.js";
import { RedisBroker, type RedisBrokerOptions } from "../../../src/brokers/redis/index.js";
import { Worker, type WorkerOptions } from "../../../src/worker/worker.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { adminClient, deleteNamespace, REDIS_URL, sleep, uniqueNamespace, waitFor } from "./helpers.js";

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

function newBroker(namespace: string, options: RedisBrokerOptions = {}): RedisBroker {
  if (!namespaces.includes(namespace)) {
    namespaces.push(namespace);
  }
  return new RedisBroker({ url: REDIS_URL, namespace, ...options });
}

function newWorker(broker: RedisBroker, options: WorkerOptions = {}): Worker {
  return new Worker(broker, { concurrency: 1, shutdownTimeout: 5000, ...options });
}

/** Pushes a raw body the way a foreign producer following Python's layout does. */
async function pushRaw(namespace: string, queueName: string, redisMessageId: string, body: string | Buffer): Promise<void> {
  await admin.hset(`${namespace}:${queueName}.msgs`, redisMessageId, body);
  await admin.rpush(`${namespace}:${queueName}`, redisMessageId);
}

function validBody(queueName: string, redisMessageId: string | undefined, args: unknown[], options: Record<string, unknown> = {}): string {
  return JSON.stringify({
    queue_name: queueName,
    actor_name: "echo",
    args,
    kwargs: {},
    options: redisMessageId === undefined ? options : { ...options, redis_message_id: redisMessageId },
    message_id: `00000000-0000-4000-8000-${String(args[0]).padStart(12, "0")}`,
    message_timestamp: Date.now(),
  });
}

test("bad bodies are dead-lettered once and good ones run", async () => {
  const namespace = uniqueNamespace("fc04");
  const broker = newBroker(namespace);
  const worker = newWorker(broker);
  const ran: unknown[] = [];
  actor((label: string) => ran.push(label), { broker, actorName: "echo" });
  logs.records.length = 0;

  const bad = { a: "rid-a", b: "rid-b", c: "rid-c" };
  await pushRaw(namespace, "default", bad.a, Buffer.from([0x80, 0xff, 0x00]));
  await pushRaw(namespace, "default", bad.b, "not json");
  await pushRaw(namespace, "default", bad.c, JSON.stringify({ queue_name: "default", args: [], kwargs: {}, options: { redis_message_id: bad.c } }));
  await pushRaw(namespace, "default", "rid-d", validBody("default", "rid-d", ["d"], { eta: null }));
  await pushRaw(namespace, "default", "rid-e", validBody("default", "rid-e", ["e"], { eta: "tomorrow" }));
  await pushRaw(namespace, "default", "rid-f", validBody("default", "rid-f", ["f"], { eta: Date.now() - 3_600_000 }));
  await pushRaw(namespace, "default", "rid-g", validBody("default", "rid-g", ["g"]));
  await admin.rpush(`${namespace}:default`, "rid-ghost"); // listed, but its body is missing

  try {
    await worker.start();
    await waitFor("good messages run", () => ran.length === 4, 5000);
    await broker.join("default", { timeout: 5000, failFast: false });
    await worker.join();

    assert.deepEqual(ran, ["d", "e", "f", "g"]);
    assert.deepEqual((await admin.zrange(`${namespace}:default.XQ`, 0, -1)).sort(), [bad.a, bad.b, bad.c]);
    assert.deepEqual(await admin.hgetBuffer(`${namespace}:default.XQ.msgs`, bad.a), Buffer.from([0x80, 0xff, 0x00]), "the raw bytes are kept");
    for (const redisMessageId of Object.values(bad)) {
      assert.equal(logs.find("error", `Failed to decode message ${redisMessageId}`).length, 1, `one decode error for ${redisMessageId}`);
    }
    assert.equal(logs.find("warn", "invalid eta").length, 1, "one warning for the invalid eta");
    assert.equal(logs.find("warn", "rid-ghost").length, 1, "one warning for the missing body");

    assert.equal(await admin.exists(`${namespace}:default`, `${namespace}:default.msgs`), 0, "the queue ends empty");
    assert.equal(await admin.exists(`${namespace}:default.DQ`, `${namespace}:default.DQ.msgs`), 0, "the delay queue ends empty");
    assert.equal(await admin.exists(broker.acksKey("default")), 0, "nothing is left unacked");
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("foreign ids and queue names are acked by fetched id", async () => {
  const namespace = uniqueNamespace("foreign");
  const broker = newBroker(namespace);
  const worker = newWorker(broker);
  const ran: unknown[] = [];
  actor((label: string) => ran.push(label), { broker, actorName: "echo" });
  logs.records.length = 0;

  await pushRaw(namespace, "default", "rid-missing", validBody("default", undefined, ["missing"]));
  await pushRaw(namespace, "default", "rid-other", validBody("default", "rid-something-else", ["other-id"]));
  await pushRaw(namespace, "default", "rid-mismatch", validBody("spec_other", "rid-mismatch", ["mismatch"]));

  try {
    await worker.start();
    await waitFor("three messages run", () => ran.length === 3, 5000);
    await broker.join("default", { timeout: 5000 });
    await worker.join();

    assert.deepEqual(ran, ["missing", "other-id", "mismatch"]);
    assert.equal(logs.find("warn", "fetched from 'default' as rid-missing").length, 1);
    assert.equal(logs.find("warn", "fetched from 'default' as rid-other").length, 1);
    assert.equal(logs.find("warn", "names queue 'spec_other'").length, 1);
    assert.equal(await admin.exists(`${namespace}:default.msgs`), 0, "all three were acked on 'default'");
    assert.equal(await admin.exists(broker.acksKey("default")), 0);
    assert.deepEqual(await admin.keys(`${namespace}:spec_other*`), [], "nothing touched the queue named in the body");
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("future eta on canonical queue is honoured", async () => {
  const namespace = uniqueNamespace("eta");
  const broker = newBroker(namespace);
  const worker = newWorker(broker);
  const ranAt: number[] = [];
  actor(() => ranAt.push(Date.now()), { broker, actorName: "echo" });
  const eta = Date.now() + 400;
  await pushRaw(namespace, "default", "rid-eta", validBody("default", "rid-eta", ["later"], { eta }));

  try {
    await worker.start();
    await waitFor("the message to run", () => ranAt.length === 1, 5000);
    await broker.join("default", { timeout: 5000 });

    // Timers measure a monotonic clock, so allow the wall clock a little slack.
    assert.ok(ranAt[0]! >= eta - 50, "the message was held until its eta, not run at once");
    assert.equal(await admin.exists(`${namespace}:default.msgs`, `${namespace}:default.DQ.msgs`), 0, "the original and the released copy were acked");
    assert.equal(await admin.exists(broker.acksKey("default")), 0);
  } finally {
    await worker.stop();
    await broker.close();
  }
});

test("busy worker keeps messages past heartbeat timeout", async () => {
  const namespace = uniqueNamespace("busy");
  const options = { heartbeatTimeout: 300, maintenanceChance: 1_000_000 };
  const busyBroker = newBroker(namespace, options);
  const otherBroker = newBroker(namespace, options);
  // Both consumers of the busy worker are full, so only its heartbeat timer shows it is alive.
  const busy = newWorker(busyBroker, { queuePrefetch: 1, delayQueuePrefetch: 1 });
  const other = newWorker(otherBroker, { concurrency: 2 });
  const runs: string[] = [];
  for (const [name, broker] of [["busy", busyBroker], ["other", otherBroker]] as const) {
    actor(
      async () => {
        runs.push(name);
        await sleep(1500);
      },
      { broker, actorName: "long" },
    );
  }

  try {
    await busyBroker.actors.get("long")!.sendWithOptions({ delay: 60_000 });
    await busyBroker.actors.get("long")!.send();
    await busy.start();
    await waitFor("long task running and delayed message held", async () => runs.length === 1 && (await admin.scard(busyBroker.acksKey("default.DQ"))) === 1);

    await other.start();
    await waitFor("long task acked", async () => (await admin.hlen(`${namespace}:default.msgs`)) === 0, 10_000);
    await sleep(400);

    assert.deepEqual(runs, ["busy"], "the other worker never took the busy worker's message");
    assert.equal(await admin.scard(busyBroker.acksKey("default.DQ")), 1, "the held delayed message stayed with the busy worker");
  } finally {
    await other.stop();
    await busy.stop();
    await Promise.all([busyBroker.close(), otherBroker.close()]);
  }
});

test("messages of a killed worker are recovered", async () => {
  const namespace = uniqueNamespace("kill");
  const broker = newBroker(namespace, { heartbeatTimeout: 1000, maintenanceChance: 1_000_000 });
  const counts = new Map<number, number>();
  const work = actor((index: number) => counts.set(index, (counts.get(index) ?? 0) + 1), { broker, actorName: "work" });
  for (let index = 0; index < 3; index += 1) {
    await work.send(index);
  }

  const fixture = fileURLToPath(new URL("./fixtures/fetch-and-hang.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", fixture, namespace, "default", "3"], { stdio: ["pipe", "pipe", "inherit"] });
  const worker = newWorker(broker, { concurrency: 2 });

  try {
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
    });
    await waitFor("the child to fetch three messages", () => output.includes("\n"), 20_000);
    const childBrokerId = /^fetched (\S+)/.exec(output)?.[1];
    assert.ok(childBrokerId !== undefined, `the child printed its broker id, got ${JSON.stringify(output)}`);

    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(await admin.scard(`${namespace}:__acks__.${childBrokerId}.default`), 3, "the dead child holds three messages");
    assert.equal(await admin.llen(`${namespace}:default`), 0);

    await worker.start();
    await waitFor("recovered messages processed", () => counts.size === 3, 10_000);
    await broker.join("default", { timeout: 5000 });

    assert.deepEqual([...counts.values()], [1, 1, 1], "each message ran once");
    assert.equal(await admin.exists(`${namespace}:__acks__.${childBrokerId}.default`), 0, "the dead child's acks set is gone");
    assert.equal(await admin.zscore(`${namespace}:__heartbeats__`, childBrokerId), null, "the dead child left the heartbeats");
  } finally {
    child.kill("SIGKILL");
    await worker.stop();
    await broker.close();
  }
});

/** A loopback TCP proxy to Redis that a test can cut and restore. */
class RedisProxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(6379, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Drops every connection and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await new Promise((resolve) => server?.close(resolve));
  }
}

test("worker survives connection loss and retries acks", async () => {
  const namespace = uniqueNamespace("proxy");
  const proxy = new RedisProxy();
  await proxy.start();
  const broker = newBroker(namespace, { url: `redis://127.0.0.1:${proxy.port}/0`, maintenanceChance: 0 });
  const producer = newBroker(namespace);
  const worker = newWorker(broker, { concurrency: 2 });
  const counts = new Map<number, number>();
  let cutDone: () => void = () => undefined;
  const connectionCut = new Promise<void>((resolve) => {
    cutDone = resolve;
  });
  for (const target of [broker, producer]) {
    actor(
      async (index: number) => {
        counts.set(index, (counts.get(index) ?? 0) + 1);
        if (index === 0) {
          await connectionCut; // finishes during the outage, so its ack must wait
        }
      },
      { broker: target, actorName: "work" },
    );
  }

  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on("unhandledRejection", onUnhandled);
  logs.records.length = 0;

  try {
    await worker.start();
    const work = producer.actors.get("work")!;
    await work.send(0);
    await waitFor("first task running", () => counts.get(0) === 1);

    await proxy.cut();
    cutDone();
    for (let index = 1; index <= 5; index += 1) {
      await work.send(index);
    }
    await sleep(1500);
    await proxy.start();

    await waitFor("messages sent during the outage processed", () => counts.size === 6, 20_000);
    await producer.join("default", { timeout: 20_000 });

    assert.deepEqual([...counts.values()], [1, 1, 1, 1, 1, 1], "every message ran once");
    assert.equal(await admin.exists(broker.acksKey("default")), 0, "the first message's ack went through after the outage");
    assert.ok(logs.find("warn", "Lost the connection to Redis").length >= 1, "the outage was logged");
    assert.ok(logs.find("warn", "Failed to ack message").length >= 1, "the ack was retried");
    assert.deepEqual(unhandled, [], "no unhandled rejection");
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await worker.stop();
    await Promise.all([broker.close(), producer.close()]);
    await proxy.cut();
  }
});
