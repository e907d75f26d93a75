/**
 * A Redis worker process must not load ioredis, which alone costs tens of
 * MiB of memory. A fresh process runs a task through RedisBroker and Worker,
 * or uses the Redis results and rate-limiter backends, and lists the
 * modules it loaded. ioredis is CommonJS, which this project only loads
 * through require(), so a load would show in require.cache.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { adminClient, deleteNamespace, uniqueNamespace } from "../helpers.js";

const repositoryRoot = path.resolve(import.meta.dirname, "..", "..", "..", "..");

/** Runs the ES module `script` in a new Node process with tsx and returns the JSON it writes to stdout. */
async function runChild(script: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: repositoryRoot,
    encoding: "utf8",
    timeout: 60_000,
  });
  return JSON.parse(stdout);
}

test("Redis worker process never loads ioredis", async () => {
  const namespace = uniqueNamespace("noioredis");
  const script = `
    import { createRequire } from "node:module";
    const { actor, Worker, setLogger, ConsoleLogger } = await import(${JSON.stringify(path.join(repositoryRoot, "src/index.ts"))});
    const { RedisBroker } = await import(${JSON.stringify(path.join(repositoryRoot, "src/brokers/redis/index.ts"))});
    setLogger(new ConsoleLogger({ level: "warn" }));

    const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace: ${JSON.stringify(namespace)} });
    let resolveDone;
    const done = new Promise((resolve) => { resolveDone = resolve; });
    const task = actor((value) => { resolveDone(value); }, { actorName: "no_ioredis_task", queueName: "no_ioredis", broker });
    const worker = new Worker(broker, { concurrency: 2, queues: ["no_ioredis"] });
    await worker.start();
    await task.send(42);
    const value = await done;
    await worker.stop();
    await broker.flushAll();
    await broker.close();

    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({ value, ioredis: loaded.filter((file) => file.includes("/node_modules/ioredis/")) }));
  `;

  const admin = adminClient();
  try {
    const result = (await runChild(script)) as { value: number; ioredis: string[] };

    assert.equal(result.value, 42, "the task ran in the child process");
    assert.deepEqual(result.ioredis, [], "no ioredis module was loaded");
  } finally {
    await deleteNamespace(admin, namespace);
    await admin.quit();
  }
});

test("Redis backends never load ioredis", async () => {
  const namespace = uniqueNamespace("noioredis-backends");
  const module = (file: string): string => JSON.stringify(path.join(repositoryRoot, file));
  const script = `
    import { createRequire } from "node:module";
    const { RedisBackend } = await import(${module("src/results/backends/redis.ts")});
    const { Barrier, ConcurrentRateLimiter, WindowRateLimiter } = await import(${module("src/rate-limits/index.ts")});
    const { RedisRateLimiterBackend } = await import(${module("src/rate-limits/backends/redis.ts")});
    const url = "redis://127.0.0.1:6379/0";
    const namespace = ${JSON.stringify(namespace)};

    const results = new RedisBackend({ url, namespace, useNamespacePrefixKeys: true });
    const message = { queueName: "no_ioredis", actorName: "task", messageId: "m1" };
    await results.storeResult(message, { value: 42 }, 60000);
    const read = await results.getResult(message);
    const waited = await results.getResult(message, { block: true, timeout: 1000 });
    await results.close();

    const limits = new RedisRateLimiterBackend({ url });
    const concurrent = await new ConcurrentRateLimiter(limits, namespace + ":concurrent", { limit: 1 }).acquire(() => "inside");
    const window = await new WindowRateLimiter(limits, namespace + ":window", { limit: 2, window: 2 }).acquire(() => "inside");
    const barrier = new Barrier(limits, namespace + ":barrier");
    await barrier.create(2);
    const firstParty = await barrier.wait({ block: false });
    const lastParty = await barrier.wait({ timeout: 1000 });
    const woken = await limits.wait(barrier.eventsKey, 1000);
    await limits.close();

    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      read, waited, concurrent, window, firstParty, lastParty, woken,
      ioredis: loaded.filter((file) => file.includes("/node_modules/ioredis/")),
    }));
  `;

  const admin = adminClient();
  try {
    const result = (await runChild(script)) as Record<string, unknown>;

    assert.deepEqual(result["read"], { value: 42 }, "the result was stored and read");
    assert.deepEqual(result["waited"], { value: 42 }, "the blocking read found the result");
    assert.equal(result["concurrent"], "inside", "the concurrent limiter was acquired");
    assert.equal(result["window"], "inside", "the window limiter was acquired");
    assert.equal(result["firstParty"], false, "the first party waits");
    assert.equal(result["lastParty"], true, "the last party clears the barrier");
    assert.equal(result["woken"], true, "a blocking wait saw the release event");
    assert.deepEqual(result["ioredis"], [], "no ioredis module was loaded");
  } finally {
    await deleteNamespace(admin, namespace);
    await admin.quit();
  }
});
