/**
 * A Redis worker process must not load ioredis, which alone costs tens of
 * MiB of memory. A fresh process runs a task through RedisBroker and Worker
 * and lists the modules it loaded. ioredis is CommonJS, which this project
 * only loads through require(), so a load would show in require.cache.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { adminClient, deleteNamespace, uniqueNamespace } from "../helpers.js";

const repositoryRoot = path.resolve(import.meta.dirname, "..", "..", "..", "..");

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
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repositoryRoot,
      encoding: "utf8",
      timeout: 60_000,
    });
    const result = JSON.parse(stdout) as { value: number; ioredis: string[] };

    assert.equal(result.value, 42, "the task ran in the child process");
    assert.deepEqual(result.ioredis, [], "no ioredis module was loaded");
  } finally {
    await deleteNamespace(admin, namespace);
    await admin.quit();
  }
});
