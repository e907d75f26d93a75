/**
 * The CLI's main process keeps the Redis heartbeats of its worker
 * processes, so that they need no heartbeat thread: the heartbeat stays
 * fresh while a worker's event loop is blocked, and stops when the worker
 * process dies.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import type { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { adminClient, deleteNamespace } from "../brokers/redis/helpers.js";
import { startCli } from "./cli-process.js";

let admin: Redis;
let folder: string;

before(async () => {
  admin = adminClient();
  await admin.connect();
  folder = mkdtempSync(join(tmpdir(), "melo-cli-heartbeat-"));
});

after(async () => {
  await admin.quit();
  rmSync(folder, { recursive: true, force: true });
});

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}.`);
    }
    await sleep(50);
  }
}

test("main process keeps a blocked worker's heartbeat", async () => {
  const namespace = `melo-cli-beat-${process.pid}-${Date.now()}`;
  const output = join(folder, "output.txt");
  const key = `${namespace}:__heartbeats__`;
  const run = startCli(["test/cli/fixtures/redis-app.ts", "-p", "1", "-t", "1", "-v"], {
    env: { MELO_CLI_NAMESPACE: namespace, MELO_CLI_OUTPUT: output, MELO_CLI_HEARTBEAT_TIMEOUT: "400" },
  });
  const producer = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace });
  const spin = actor((_milliseconds: number) => undefined, { broker: producer, actorName: "cli_spin", queueName: "cli_spin" });

  try {
    await run.waitForStderr(/Worker process is ready for action\./);
    const match = /^broker (\S+) (\d+)$/m.exec(run.stdout());
    assert.ok(match !== null, `the worker printed its broker id:\n${run.stdout()}`);
    const [, brokerId = "", pid = ""] = match;

    await run.waitForStderr(new RegExp(`Keeping the heartbeat of broker ${brokerId}`));
    assert.doesNotMatch(run.stderr(), /Started the heartbeat thread/, "the worker process started no heartbeat thread");

    await spin.send(2500);
    await waitFor("the blocking task to start", () => existsSync(output) && readFileSync(output, "utf8").includes("started"));
    const blockedAt = Date.now();
    await sleep(1200);

    // The worker's event loop is blocked, so only the main process can have written this score.
    const during = Number(await admin.zscore(key, brokerId));
    assert.ok(during > blockedAt, `the heartbeat moved during the block (score ${during}, block began before ${blockedAt})`);

    await waitFor("the blocking task to end", () => readFileSync(output, "utf8").includes("done"));
    process.kill(Number(pid), "SIGKILL");
    await run.waitForExit();
    const last = Number(await admin.zscore(key, brokerId));
    await sleep(800);

    assert.equal(Number(await admin.zscore(key, brokerId)), last, "no refresh after the worker process died");
  } finally {
    run.killGroup();
    await producer.close();
    await deleteNamespace(admin, namespace);
  }
});
