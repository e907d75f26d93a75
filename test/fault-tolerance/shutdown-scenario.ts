/**
 * The graceful-shutdown scenario, shared by the Redis and RabbitMQ test
 * files: one CLI worker process with 2 threads (so a prefetch of 4) and a
 * queue of 10 messages, the first two of them slow (`ok_slow` succeeds,
 * `fail_slow` fails and is retried), stopped by SIGTERM while both run.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { EXIT_KILLED, EXIT_OK } from "../../src/cli/exit-codes.js";
import type { Message } from "../../src/message/message.js";
import type { TaskContext } from "../../src/worker/context.js";
import { Worker } from "../../src/worker/worker.js";
import { readLines, READY_LINE, startCli, type CliRun } from "../cli/cli-process.js";
import { sleep, waitFor } from "./support.js";

const APP = "test/fault-tolerance/fixtures/shutdown-app.ts";
export const ACTOR_NAMES = ["ok_slow", "fail_slow", "ok_fast"] as const;

/** One broker's view of the scenario. */
export interface ShutdownTarget {
  /** Environment of the app: FT_BROKER, FT_QUEUE and, for Redis, FT_NAMESPACE. */
  readonly env: Record<string, string>;
  readonly queueName: string;
  /** Returns a new broker on the scenario's queues, for sending and for running what the CLI left. */
  createBroker(): Broker;
  /** Messages waiting in `<q>`, oldest first. */
  waiting(): Promise<Message[]>;
  /** Messages waiting in `<q>.DQ`. */
  delayed(): Promise<Message[]>;
  /** Number of messages in `<q>.XQ`. */
  deadLettered(): Promise<number>;
  /** Broker keys that a worker must not leave behind once everything ran (Redis acks sets); none by default. */
  leftoverKeys?(): Promise<string[]>;
}

/** A running CLI with its output file. */
export interface AppRun {
  readonly run: CliRun;
  /** Lines the actors appended, e.g. `started ok_slow 0`. */
  lines(): string[];
}

/** Sends ok_slow, fail_slow and 8 ok_fast messages, in that order; returns them as sent. */
export async function sendLoad(target: ShutdownTarget): Promise<Message[]> {
  const broker = target.createBroker();
  try {
    const declare = (actorName: string) => actor((_index: number) => undefined, { broker, actorName, queueName: target.queueName });
    const okSlow = declare("ok_slow");
    const failSlow = declare("fail_slow");
    const okFast = declare("ok_fast");

    const sent = [await okSlow.send(0), await failSlow.send(1)];
    for (let index = 2; index < 10; index += 1) {
      sent.push(await okFast.send(index));
    }
    return sent;
  } finally {
    await broker.close();
  }
}

/** Starts the CLI with 1 process and 2 threads and waits until both slow messages run. */
export async function startApp(t: TestContext, target: ShutdownTarget, extraArgs: string[] = []): Promise<AppRun> {
  const dir = mkdtempSync(join(tmpdir(), "melo-ft-shutdown-"));
  const output = join(dir, "output.txt");
  const run = startCli([APP, "-p", "1", "-t", "2", ...extraArgs], { env: { ...target.env, FT_OUTPUT: output } });
  t.after(() => {
    run.killGroup();
    rmSync(dir, { recursive: true, force: true });
  });

  const app = { run, lines: () => readLines(output) };
  await run.waitForStderr(READY_LINE);
  await waitFor(
    "both slow messages to start",
    () => app.lines().includes("started ok_slow 0") && app.lines().includes("started fail_slow 1"),
    20_000,
  );
  return app;
}

/** Checks the state after a clean stop: 1 done, 1 retry in the delay queue, 8 back in the queue. */
export async function assertCleanStop(target: ShutdownTarget, app: AppRun, sent: readonly Message[]): Promise<void> {
  assert.deepEqual(
    app.lines().filter((line) => !line.startsWith("started")),
    ["done ok_slow 0", "failed fail_slow 1"],
    "both running tasks finished, and nothing else ran",
  );

  const waiting = await target.waiting();
  assert.deepEqual(
    waiting.map((message) => message.messageId).sort(),
    sent.slice(2).map((message) => message.messageId).sort(),
    "the 8 ok_fast messages, fetched or not, are back in the queue",
  );

  const delayed = await target.delayed();
  assert.equal(delayed.length, 1, "one retry waits in the delay queue");
  assert.equal(delayed[0]!.messageId, sent[1]!.messageId);
  assert.equal(delayed[0]!.actorName, "fail_slow");
  assert.equal(delayed[0]!.options["retries"], 1);
  assert.equal(await target.deadLettered(), 0, "nothing was dead-lettered");
}

/**
 * Runs a worker in this process until every message of `sent` has run on
 * it; returns how often each message id ran.
 */
export async function runLeftovers(target: ShutdownTarget, sent: readonly Message[]): Promise<Map<string, number>> {
  const broker = target.createBroker();
  const runs = new Map<string, number>();
  for (const actorName of ACTOR_NAMES) {
    actor(
      function (this: TaskContext) {
        runs.set(this.message.messageId, (runs.get(this.message.messageId) ?? 0) + 1);
      },
      { broker, actorName, queueName: target.queueName },
    );
  }

  const worker = new Worker(broker, { concurrency: 4, shutdownTimeout: 5000 });
  try {
    await worker.start();
    await waitFor("every message to run again", () => sent.every((message) => runs.has(message.messageId)), 20_000);
    await broker.join(target.queueName, { timeout: 10_000 });
    await worker.join();
    // A duplicate delivery would show up here rather than in the wait above.
    await sleep(200);
  } finally {
    await worker.stop();
    await broker.close();
  }
  return runs;
}

/**
 * Declares the three shutdown tests for one broker: a SIGTERM under load,
 * a second SIGTERM, and a shutdown timeout shorter than the running tasks.
 */
export function defineShutdownTests(brokerName: string, createTarget: () => ShutdownTarget): void {
  test(`${brokerName} SIGTERM under load loses nothing`, async (t) => {
    const target = createTarget();
    const sent = await sendLoad(target);
    const app = await startApp(t, target);

    await sleep(1000);
    app.run.signal("SIGTERM");
    const exit = await app.run.waitForExit();

    assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
    await assertCleanStop(target, app, sent);
    assert.deepEqual((await target.leftoverKeys?.()) ?? [], [], "nothing is left behind");
  });

  test(`${brokerName} second SIGTERM exits 1, redelivers`, async (t) => {
    const target = createTarget();
    const sent = await sendLoad(target);
    const app = await startApp(t, target);

    await sleep(1000);
    app.run.signal("SIGTERM");
    await sleep(500);
    app.run.signal("SIGTERM");
    const exit = await app.run.waitForExit();

    assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
    assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks were cut short");

    const runs = await runLeftovers(target, sent);
    assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each of the 10 messages ran once afterwards");
    assert.deepEqual((await target.leftoverKeys?.()) ?? [], [], "what the killed worker left was recovered");
  });

  test(`${brokerName} shutdown timeout leaves tasks unacked`, async (t) => {
    const target = createTarget();
    const sent = await sendLoad(target);
    const app = await startApp(t, target, ["--worker-shutdown-timeout", "1000"]);

    // Stopping right away leaves the 3 s tasks 2 s past the timeout.
    app.run.signal("SIGTERM");
    const exit = await app.run.waitForExit();

    assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
    assert.match(app.run.stderr(), /did not finish within the shutdown timeout/);
    assert.deepEqual(app.lines().filter((line) => !line.startsWith("started")), [], "the running tasks did not finish");
    assert.deepEqual(
      (await target.waiting()).map((message) => message.messageId).sort(),
      sent.map((message) => message.messageId).sort(),
      "all 10 messages, the unfinished ones included, are back in the queue",
    );
    assert.deepEqual(await target.delayed(), []);

    const runs = await runLeftovers(target, sent);
    assert.deepEqual([...runs.values()], Array.from({ length: 10 }, () => 1), "each message ran once afterwards");
    assert.deepEqual((await target.leftoverKeys?.()) ?? [], [], "nothing is left behind");
  });
}
