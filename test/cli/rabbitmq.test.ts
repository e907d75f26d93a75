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
import { openRawClient, RABBITMQ_URL, uniqueQueueName } from "../brokers/rabbitmq/support.js";
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
