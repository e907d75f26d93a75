/**
 * Stop signals while the command starts: before the worker processes are
 * forked, while they are forked, and while they import the modules. Only
 * the StubBroker fixtures are used, so a bug that forks too much cannot
 * reach a real broker.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_OK } from "../../src/cli/exit-codes.js";
import type { WorkerProcessConfig } from "../../src/cli/ipc.js";
import { main } from "../../src/cli/main.js";
import type { MainProcessSignal, MainProcessSignalHandler, SignalSource } from "../../src/cli/main-signals.js";
import { Supervisor } from "../../src/cli/supervisor.js";
import { getRootLogger, setLogger, type LogFields, type Logger } from "../../src/logger.js";
import {
  FIXTURES,
  isProcessAlive,
  isProcessGroupAlive,
  readLines,
  startCli,
  waitFor,
  waitForCliSignalHandlers,
  type CliRun,
} from "./cli-process.js";

const STUB_APP = join(FIXTURES, "stub-app.ts");
const SLOW_IMPORT = join(FIXTURES, "slow-import.ts");
const STARTED_LINE = /Started worker process (\d+) with PID (\d+)\./g;

/** A SignalSource that tests drive by hand, with the stacking of MainProcessSignals. */
class ManualSignals implements SignalSource {
  private readonly handlers: MainProcessSignalHandler[] = [];

  constructor(private readonly pending: MainProcessSignal[] = []) {}

  route(handler: MainProcessSignalHandler): () => void {
    this.handlers.push(handler);
    for (const signal of this.pending.splice(0)) {
      handler(signal);
    }
    return () => {
      this.handlers.splice(this.handlers.lastIndexOf(handler), 1);
    };
  }

  emit(signal: MainProcessSignal): void {
    const handler = this.handlers.at(-1);
    assert.ok(handler !== undefined, `no handler is routed for ${signal}`);
    handler(signal);
  }
}

/** Installs a root logger that keeps the messages, and restores the old one when the test ends. */
function captureLogs(t: TestContext): string[] {
  const messages: string[] = [];
  const keep = (_fields: LogFields, message: string): void => {
    messages.push(message);
  };
  const previous = getRootLogger();
  const capturing: Logger = { debug: keep, info: keep, warn: keep, error: keep };
  setLogger(capturing);
  t.after(() => {
    setLogger(previous);
  });
  return messages;
}

function makeTempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-start-up-"));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Starts the CLI and kills its process group when the test ends. */
function start(t: TestContext, args: string[], env: Record<string, string> = {}): CliRun {
  const run = startCli(args, { env });
  t.after(() => {
    run.killGroup();
  });
  return run;
}

/** Returns the PIDs of the worker processes that the main process logged as forked (needs -v). */
function forkedPids(run: CliRun): number[] {
  return [...run.stderr().matchAll(STARTED_LINE)].map((match) => Number(match[2]));
}

async function expectNoOrphans(run: CliRun): Promise<void> {
  const pids = forkedPids(run);
  await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), `worker processes ${pids.join(", ")} to be gone`);
  await waitFor(() => !isProcessGroupAlive(run.pid), `process group ${run.pid} to be empty`);
}

test("main stop before start-up exits 0", async (t) => {
  const logs = captureLogs(t);
  const pidFile = join(makeTempDir(t), "melodramatiq.pid");
  const signals = new ManualSignals(["SIGTERM"]);

  const code = await main([STUB_APP, "-p", "1", "--skip-logging", "--pid-file", pidFile], signals);

  assert.equal(code, EXIT_OK);
  assert.ok(logs.includes("Received SIGTERM before the worker processes started; exiting without starting them."), logs.join("\n"));
  assert.equal(logs.filter((message) => message.startsWith("Started worker process")).length, 0, "no worker process is forked");
  assert.equal(existsSync(pidFile), false, "no PID file is written");
});

test("main stop during start-up exits 0", async (t) => {
  const logs = captureLogs(t);
  const signals = new ManualSignals();
  // main() runs synchronously up to its first turn of the event loop, so
  // this immediate runs after parsing and resolving, before any fork.
  setImmediate(() => {
    signals.emit("SIGINT");
  });

  const code = await main([STUB_APP, "-p", "1", "--skip-logging"], signals);

  assert.equal(code, EXIT_OK);
  assert.ok(logs.includes("Received SIGINT before the worker processes started; exiting without starting them."), logs.join("\n"));
  assert.equal(logs.filter((message) => message.startsWith("Started worker process")).length, 0, "no worker process is forked");
});

test("main SIGHUP before start-up is ignored", async (t) => {
  const logs = captureLogs(t);
  const signals = new ManualSignals(["SIGHUP", "SIGTERM"]);

  const code = await main([STUB_APP, "-p", "1", "--skip-logging"], signals);

  assert.equal(code, EXIT_OK);
  assert.ok(logs.includes("Received SIGHUP before the worker processes started; ignoring it, since they load the current code anyway."), logs.join("\n"));
});

test("supervisor stop signal ends forking", async (t) => {
  const logs = captureLogs(t);
  const signals = new ManualSignals();
  let exited = 0;
  const supervisor = new Supervisor({
    processes: 50,
    signals,
    entryPath: join(FIXTURES, "idle-process.ts"),
    configFor: (index) => ({ index }) as WorkerProcessConfig,
    onChildExit: () => {
      exited += 1;
    },
  });

  const finished = supervisor.run();
  // Forking all 50 in one synchronous loop would leave this signal until after the last fork.
  setImmediate(() => {
    signals.emit("SIGTERM");
  });
  const code = await finished;

  assert.equal(code, EXIT_OK);
  const forked = logs.filter((message) => message.startsWith("Started worker process")).length;
  assert.ok(forked >= 1, `forked ${forked} of 50 worker processes`);
  assert.ok(forked < 50, `forked ${forked} of 50 worker processes`);
  assert.equal(exited, forked, "every forked worker process has exited when run() resolves");
  assert.ok(logs.includes(`Stopped forking after ${forked} of 50 worker process(es).`), logs.join("\n"));
});

test("cli SIGTERM while forking stops all", async (t) => {
  const run = start(t, [STUB_APP, "-p", "20", "-v"], { MELO_CLI_OUTPUT: join(makeTempDir(t), "output.txt") });
  await run.waitForStderr(/Started worker process 0 with PID \d+/);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /Sending signal 'SIGTERM' to subprocesses\.\.\./);
  assert.doesNotMatch(run.stderr(), /exited unexpectedly/);
  await expectNoOrphans(run);
});

test("cli SIGTERM at first instant exits 0", async (t) => {
  const run = start(t, [STUB_APP, "-p", "2", "-v"], { MELO_CLI_OUTPUT: join(makeTempDir(t), "output.txt") });
  const handled = await waitForCliSignalHandlers(run.pid);
  if (!handled) {
    t.skip("needs /proc to see when the CLI catches signals");
    run.killGroup();
    return;
  }

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  // NOTE: the signal lands while main.js still loads through tsx, which
  // took about 100 ms on the development machine. A test process that
  // stalls longer between reading /proc and signalling would see a fork.
  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] Received SIGTERM before the worker processes started; exiting without starting them\./);
  assert.doesNotMatch(run.stderr(), /Started worker process|booting up/);
  await expectNoOrphans(run);
});

test("cli SIGTERM during endless import exits 0", async (t) => {
  const output = join(makeTempDir(t), "output.txt");
  const run = start(t, [STUB_APP, SLOW_IMPORT, "-p", "2", "-v"], { MELO_CLI_OUTPUT: output, MELO_CLI_IMPORT_DELAY_MS: "never" });
  await waitFor(() => readLines(output).filter((line) => line.startsWith("importing")).length === 2, `2 "importing" lines in ${output}`);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.equal([...run.stderr().matchAll(/\[INFO\] Stop requested while importing the modules; exiting without consuming\. \(reason=SIGTERM\)/g)].length, 2, run.stderr());
  assert.doesNotMatch(run.stderr(), /Worker process is ready for action/);
  await expectNoOrphans(run);
});

test("cli SIGTERM during slow import runs nothing", async (t) => {
  const output = join(makeTempDir(t), "output.txt");
  // Long enough that the import is still running when the signal arrives,
  // short enough that a worker process that waited for it would consume.
  const run = start(t, [STUB_APP, SLOW_IMPORT, "-p", "1", "-v"], { MELO_CLI_OUTPUT: output, MELO_CLI_IMPORT_DELAY_MS: "3000" });
  await waitFor(() => readLines(output).some((line) => line.startsWith("importing")), `an "importing" line in ${output}`);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();
  await expectNoOrphans(run);

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.deepEqual(readLines(output).filter((line) => !line.startsWith("importing")), [], "the queued sleepy message never starts");
  assert.match(run.stderr(), /Stop requested while importing the modules; exiting without consuming\./);
});
