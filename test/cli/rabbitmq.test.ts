/**
 * The CLI against the local RabbitMQ server: consuming with several worker
 * processes, a dead worker process, and a broker that cannot be reached.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { actor } from "../../src/actor.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { EXIT_CONNECTION_FAILED, EXIT_KILLED, EXIT_OK } from "../../src/cli/exit-codes.js";
import { openRawClient, RABBITMQ_URL, uniqueQueueName, type RawClient } from "../brokers/rabbitmq/support.js";
import { isProcessAlive, READY_LINE, readLines, startCli, waitFor, type CliRun } from "./cli-process.js";

const RABBITMQ_APP = "test/cli/fixtures/rabbitmq-app.ts";

interface RabbitmqRun {
  readonly run: CliRun;
  readonly output: string;
  readonly queueName: string;
  /** Sends `cli_record(value, sleepMs)` from this test process. */
  send(value: string, sleepMs: number): Promise<void>;
}

/** Starts the RabbitMQ app on a unique queue; deletes the queues and closes the test's broker afterwards. */
function startRabbitmqApp(t: TestContext, label: string, args: string[]): RabbitmqRun {
  const dir = mkdtempSync(join(tmpdir(), `melo-cli-${label}-`));
  const output = join(dir, "output.txt");
  const queueName = uniqueQueueName(`cli_${label}`);
  const producer = new RabbitmqBroker({ url: RABBITMQ_URL });
  const record = actor(async (_value: string, _sleepMs: number) => undefined, { broker: producer, actorName: "cli_record", queueName });
  const run = startCli([RABBITMQ_APP, ...args], {
    env: { MELO_CLI_QUEUE: queueName, MELO_CLI_OUTPUT: output, MELO_CLI_RABBITMQ_URL: RABBITMQ_URL },
  });

  t.after(async () => {
    run.killGroup();
    await producer.close();
    const client = await openRawClient();
    await client.deleteQueueSet(queueName);
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    run,
    output,
    queueName,
    async send(value, sleepMs) {
      await record.send(value, sleepMs);
    },
  };
}

/** Polls the number of ready messages in `queueName` until it reaches `count`; fails after 15 s. */
async function waitForQueueCount(client: RawClient, queueName: string, count: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await client.count(queueName)) < count) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after 15000 ms waiting for ${count} ready message(s) in ${queueName}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function linesStartingWith(output: string, prefix: string): string[] {
  return readLines(output).filter((line) => line.startsWith(`${prefix} `));
}

test("cli processes each message once", async (t) => {
  const count = 40;
  const app = startRabbitmqApp(t, "once", ["-p", "2", "-t", "2"]);
  await app.run.waitForStderrCount(READY_LINE, 2);

  for (let index = 0; index < count; index += 1) {
    await app.send(String(index), 0);
  }
  await waitFor(() => linesStartingWith(app.output, "done").length >= count, `${count} processed messages`, 30_000);

  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  const processed = linesStartingWith(app.output, "done").map((line) => Number(line.split(" ")[1]));
  assert.deepEqual(
    [...processed].sort((a, b) => a - b),
    Array.from({ length: count }, (_, index) => index),
    "each message is processed once",
  );

  const client = await openRawClient();
  try {
    assert.equal(await client.count(app.queueName), 0, "nothing is left in the queue");
  } finally {
    await client.close();
  }
});

test("cli child SIGKILL redelivers its message", async (t) => {
  const values = ["a", "b", "c", "d"];
  const app = startRabbitmqApp(t, "killed", ["-p", "2", "-t", "1"]);
  const pids = (await app.run.waitForStderrCount(READY_LINE, 2)).map((match) => Number(match[1]));

  for (const value of values) {
    await app.send(value, 1500);
  }
  await waitFor(() => new Set(linesStartingWith(app.output, "started").map((line) => line.split(" ")[2])).size === 2, "both worker processes to start a message");
  const victimLine = linesStartingWith(app.output, "started")[0]!;
  const victim = Number(victimLine.split(" ")[2]);

  process.kill(victim, "SIGKILL");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
  assert.match(app.run.stderr(), new RegExp(`Worker process \\d with PID ${victim} exited unexpectedly \\(signal SIGKILL\\)`));
  assert.ok(pids.every((pid) => !isProcessAlive(pid)), "no worker process outlives the main process");

  const done = linesStartingWith(app.output, "done").map((line) => line.split(" ")[1]!);
  assert.ok(!done.includes(victimLine.split(" ")[1]!), "the killed process's message did not complete there");
  const client = await openRawClient();
  try {
    const queued = (await client.drain(app.queueName)).map((message) => (JSON.parse(message.content.toString("utf8")) as { args: string[] }).args[0]!);
    assert.deepEqual([...done, ...queued].sort(), values, "every message is either done or back in the queue");
  } finally {
    await client.close();
  }
});

test("cli unreachable broker exits 3", async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });

  const run = startCli([RABBITMQ_APP, "-p", "1"], {
    env: { MELO_CLI_QUEUE: uniqueQueueName("cli_closed"), MELO_CLI_RABBITMQ_URL: `amqp://guest:s3cret-pw@127.0.0.1:${port}` },
  });
  t.after(() => {
    run.killGroup();
  });
  const exit = await run.waitForExit(20_000);

  assert.deepEqual(exit, { code: EXIT_CONNECTION_FAILED, signal: null }, run.stderr());
  assert.match(run.stderr(), /\[melodramatiq\.WorkerProcess\(0\)\] \[ERROR\] Failed to connect to the broker\./);
  assert.match(run.stderr(), /ECONNREFUSED/);
  assert.match(run.stderr(), /Worker process 0 with PID \d+ exited unexpectedly \(code 3\)/);
  assert.ok(!run.stderr().includes("s3cret-pw"), "the password never appears in the logs");
});

test("cli SIGHUP reload keeps consuming", async (t) => {
  const app = startRabbitmqApp(t, "reload", ["-p", "2", "-t", "2"]);
  const oldPids = (await app.run.waitForStderrCount(READY_LINE, 2)).map((match) => Number(match[1]));

  await app.send("before-1", 0);
  await app.send("before-2", 0);
  await waitFor(() => linesStartingWith(app.output, "done").length >= 2, "2 messages processed before the reload");
  await app.send("during", 2000);
  await waitFor(() => linesStartingWith(app.output, "started").length >= 3, "the slow message to start");

  app.run.signal("SIGHUP");
  const newPids = (await app.run.waitForStderrCount(READY_LINE, 4)).slice(2).map((match) => Number(match[1]));
  await app.send("after-1", 0);
  await app.send("after-2", 0);
  await waitFor(() => linesStartingWith(app.output, "done").length >= 5, "every message processed after the reload");

  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, app.run.stderr());
  const doneBy = new Map(linesStartingWith(app.output, "done").map((line) => [line.split(" ")[1]!, Number(line.split(" ")[2])]));
  assert.ok(oldPids.includes(doneBy.get("during")!), "the message running at the reload finishes in its old worker process");
  assert.ok(newPids.includes(doneBy.get("after-1")!), "new worker processes consume after the reload");
  assert.ok(newPids.includes(doneBy.get("after-2")!), "new worker processes consume after the reload");
  assert.equal(linesStartingWith(app.output, "done").length, 5, "each message is processed once");
});

test("cli second SIGTERM redelivers the message", async (t) => {
  const app = startRabbitmqApp(t, "second", ["-p", "1", "-t", "1"]);
  await app.run.waitForStderrCount(READY_LINE, 1);

  await app.send("long", 60_000);
  await waitFor(() => linesStartingWith(app.output, "started").length === 1, "the long message to start");
  app.run.signal("SIGTERM");
  await app.run.waitForStderr(/Stopping worker process\.\.\./);
  app.run.signal("SIGTERM");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
  assert.deepEqual(linesStartingWith(app.output, "done"), [], "the task was cut short");

  // RabbitMQ requeues the unacked delivery once the killed process's connection is gone.
  const client = await openRawClient();
  try {
    await waitForQueueCount(client, app.queueName, 1);
    const queued = await client.drain(app.queueName);
    assert.deepEqual(
      queued.map((message) => (JSON.parse(message.content.toString("utf8")) as { args: unknown[] }).args[0]),
      ["long"],
      "the message is back in the queue for a later delivery",
    );
    assert.equal(queued[0]!.fields.redelivered, true);
  } finally {
    await client.close();
  }
});

test("cli child SIGKILL under load loses nothing", async (t) => {
  const values = Array.from({ length: 20 }, (_, index) => `m${index}`);
  const app = startRabbitmqApp(t, "load", ["-p", "3", "-t", "2"]);
  const pids = (await app.run.waitForStderrCount(READY_LINE, 3)).map((match) => Number(match[1]));

  for (const value of values) {
    await app.send(value, 2000);
  }
  await waitFor(() => new Set(linesStartingWith(app.output, "started").map((line) => line.split(" ")[2])).size === 3, "every worker process to start a message");
  const victim = Number(linesStartingWith(app.output, "started")[0]!.split(" ")[2]);

  process.kill(victim, "SIGKILL");
  const exit = await app.run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, app.run.stderr());
  assert.match(app.run.stderr(), new RegExp(`Worker process \\d with PID ${victim} exited unexpectedly \\(signal SIGKILL\\)\\. Shutting down\\.\\.\\.`));
  assert.ok(pids.every((pid) => !isProcessAlive(pid)), "no worker process outlives the main process");

  const started = new Map(linesStartingWith(app.output, "started").map((line) => [line.split(" ")[1]!, Number(line.split(" ")[2])]));
  const done = linesStartingWith(app.output, "done").map((line) => line.split(" ")[1]!);
  for (const value of done) {
    assert.notEqual(started.get(value), victim, `${value} cannot have completed in the killed process`);
  }
  const survivorsStarted = [...started].filter(([, pid]) => pid !== victim).map(([value]) => value);
  for (const value of survivorsStarted) {
    assert.ok(done.includes(value), `${value}, running in a surviving process, finishes before the exit`);
  }

  const client = await openRawClient();
  try {
    await waitForQueueCount(client, app.queueName, values.length - done.length);
    const queued = (await client.drain(app.queueName)).map((message) => (JSON.parse(message.content.toString("utf8")) as { args: string[] }).args[0]!);
    assert.deepEqual([...done, ...queued].sort(), [...values].sort(), "every message is either done or back in the queue, once");
  } finally {
    await client.close();
  }
});
