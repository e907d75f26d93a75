/**
 * Process-level behaviour on stop signals and dying processes, with the
 * StubBroker app: each worker process enqueues one `sleepy` message to
 * itself at import time, so every process has a task in flight.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_KILLED, EXIT_OK } from "../../src/cli/exit-codes.js";
import { isProcessAlive, READY_LINE, readLines, startCli, waitFor, type CliRun } from "./cli-process.js";

const STUB_APP = "test/cli/fixtures/stub-app.ts";

interface StubRun {
  readonly run: CliRun;
  readonly output: string;
}

/** Starts the stub app with an output file; `sleepMs` makes each process run one task that long. */
function startStubApp(t: TestContext, args: string[], sleepMs?: number): StubRun {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-signals-"));
  const output = join(dir, "output.txt");
  const run = startCli([STUB_APP, ...args], {
    env: { MELO_CLI_OUTPUT: output, ...(sleepMs === undefined ? {} : { MELO_CLI_SLEEP_MS: String(sleepMs) }) },
  });
  t.after(() => {
    run.killGroup();
    rmSync(dir, { recursive: true, force: true });
  });
  return { run, output };
}

/** Returns the PIDs of the worker processes once `count` of them are ready. */
async function readyWorkerPids(run: CliRun, count: number): Promise<number[]> {
  const matches = await run.waitForStderrCount(READY_LINE, count);
  return matches.map((match) => Number(match[1]));
}

async function waitForLines(output: string, prefix: string, count: number): Promise<string[]> {
  await waitFor(() => readLines(output).filter((line) => line.startsWith(prefix)).length >= count, `${count} "${prefix}" lines in ${output}`);
  return readLines(output).filter((line) => line.startsWith(prefix));
}

test("cli SIGTERM finishes running tasks", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "2", "-t", "2"], 1500);
  await readyWorkerPids(run, 2);
  await waitForLines(output, "started", 2);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.equal(readLines(output).filter((line) => line.startsWith("finished")).length, 2, "both running tasks finish before exit");
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] Sending signal 'SIGTERM' to subprocesses\.\.\./);
  assert.match(run.stderr(), /\[melodramatiq\.WorkerProcess\(0\)\] \[INFO\] Stopping worker process\.\.\./);
  assert.match(run.stderr(), /\[melodramatiq\.WorkerProcess\(1\)\] \[INFO\] Stopping worker process\.\.\./);
});

test("cli SIGINT stops gracefully with 0", async (t) => {
  const { run } = startStubApp(t, ["-p", "2"]);
  await readyWorkerPids(run, 2);

  run.signal("SIGINT");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
});

test("cli SIGTERM during start-up exits 0", async (t) => {
  const { run } = startStubApp(t, ["-p", "2", "-v"]);
  // The worker processes are forked but most likely still loading tsx and
  // the CLI, before their own SIGTERM handler exists.
  await run.waitForStderrCount(/Started worker process \d with PID \d+/, 2);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
});

test("cli SIGHUP reloads worker processes", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "2", "-t", "2"], 1500);
  const oldPids = await readyWorkerPids(run, 2);
  await waitForLines(output, "started", 2);

  run.signal("SIGHUP");
  const newPids = (await readyWorkerPids(run, 4)).slice(2);
  // Each new worker process runs the message it enqueues at import time.
  const started = await waitForLines(output, "started", 4);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] Reloading workers\.\.\. \(reason=SIGHUP\)/);
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] Starting 2 new worker process\(es\)\./);
  assert.equal(new Set([...oldPids, ...newPids]).size, 4, "the new worker processes have new PIDs");
  assert.ok(oldPids.every((pid) => !isProcessAlive(pid)), "the old worker processes are gone");
  const finished = readLines(output).filter((line) => line.startsWith("finished"));
  for (const pid of oldPids) {
    assert.ok(finished.includes(`finished ${pid}`), `the running task of ${pid} finishes before the reload`);
  }
  assert.deepEqual(started.slice(2).map((line) => Number(line.split(" ")[1])).sort(), [...newPids].sort(), "the new worker processes consume");
  const mainLines = [...run.stderr().matchAll(/\[PID (\d+)\] \[melodramatiq\.MainProcess\]/g)].map((match) => Number(match[1]));
  assert.deepEqual([...new Set(mainLines)], [run.pid], "the main process keeps its PID");
});

test("cli SIGHUP during reload is ignored", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "1"], 1500);
  await readyWorkerPids(run, 1);
  await waitForLines(output, "started", 1);

  run.signal("SIGHUP");
  await run.waitForStderr(/Stopping worker process\.\.\./);
  run.signal("SIGHUP");
  await readyWorkerPids(run, 2);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /Received SIGHUP while reloading/);
  assert.equal([...run.stderr().matchAll(/Starting 1 new worker process\(es\)/g)].length, 1);
});

test("cli SIGTERM during reload stops", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "1"], 1500);
  await readyWorkerPids(run, 1);
  await waitForLines(output, "started", 1);

  run.signal("SIGHUP");
  await run.waitForStderr(/Stopping worker process\.\.\./);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /Received SIGTERM while reloading; stopping instead of starting new worker processes\./);
  assert.doesNotMatch(run.stderr(), /Starting 1 new worker process/);
  assert.equal(readLines(output).filter((line) => line.startsWith("finished")).length, 1, "the running task finishes");
});

test("cli shutdown timeout abandons long tasks", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "1", "--worker-shutdown-timeout", "300"], 60_000);
  await readyWorkerPids(run, 1);
  await waitForLines(output, "started", 1);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.deepEqual(readLines(output).filter((line) => line.startsWith("finished")), []);
  assert.match(run.stderr(), /did not finish within the shutdown timeout/);
});

test("cli second SIGTERM exits 1", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "2"], 60_000);
  const pids = await readyWorkerPids(run, 2);
  await waitForLines(output, "started", 2);

  run.signal("SIGTERM");
  await run.waitForStderrCount(/Stopping worker process\.\.\./, 2);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, run.stderr());
  assert.match(run.stderr(), /Received SIGTERM while stopping; killing the worker processes with SIGKILL\./);
  await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), `worker processes ${pids.join(", ")} to be gone`);
});

test("worker process signal handling", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "1"], 60_000);
  const [pid] = await readyWorkerPids(run, 1);
  await waitForLines(output, "started", 1);

  process.kill(pid!, "SIGINT");
  process.kill(pid!, "SIGTERM");
  await run.waitForStderr(/Stopping worker process\.\.\./);
  process.kill(pid!, "SIGTERM");
  const exit = await run.waitForExit();

  assert.match(run.stderr(), /\[melodramatiq\.WorkerProcess\(0\)\] \[WARNING\] Received SIGTERM while stopping; exiting at once\./);
  assert.match(run.stderr(), /Worker process 0 with PID \d+ exited unexpectedly \(code 1\)/);
  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, run.stderr());
});

test("cli child SIGKILL stops the others", async (t) => {
  const { run, output } = startStubApp(t, ["-p", "2", "-t", "1"], 1500);
  const pids = await readyWorkerPids(run, 2);
  await waitForLines(output, "started", 2);
  const [victim, survivor] = pids as [number, number];

  process.kill(victim, "SIGKILL");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, run.stderr());
  assert.match(run.stderr(), new RegExp(`\\[ERROR\\] Worker process \\d with PID ${victim} exited unexpectedly \\(signal SIGKILL\\)\\. Shutting down\\.\\.\\.`));
  assert.deepEqual(readLines(output).filter((line) => line.startsWith("finished")), [`finished ${survivor}`], "the surviving process finishes its task");
  assert.equal(isProcessAlive(survivor), false);
});

test("cli unrequested child exit 0", async (t) => {
  const { run } = startStubApp(t, ["-p", "1"]);
  const [pid] = await readyWorkerPids(run, 1);

  // A worker process that stops on its own, here through its own SIGTERM
  // handler, exits 0; the main process did not ask for it, so it is no clean stop.
  process.kill(pid!, "SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_KILLED, signal: null }, run.stderr());
  assert.match(run.stderr(), /exited unexpectedly \(code 0\)/);
});

test("cli main SIGKILL leaves no orphans", async (t) => {
  const { run } = startStubApp(t, ["-p", "2"]);
  const pids = await readyWorkerPids(run, 2);

  process.kill(run.pid, "SIGKILL");
  await run.waitForExit();

  await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), `worker processes ${pids.join(", ")} to exit after the main process died`);
  await run.waitForStderrCount(/Lost the IPC channel to the main process/, 2);
});
