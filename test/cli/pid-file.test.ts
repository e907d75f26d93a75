/**
 * `--pid-file`: written with the main process's PID while the command
 * runs, removed at exit, and exit code 4 when the file cannot be used.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_OK, EXIT_PID_FILE } from "../../src/cli/exit-codes.js";
import { PidFileError, writePidFile } from "../../src/cli/pid-file.js";
import { READY_LINE, startCli, type CliRun } from "./cli-process.js";

const STUB_APP = "test/cli/fixtures/stub-app.ts";

function makeTempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-pid-"));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function startWithPidFile(t: TestContext, pidFile: string): CliRun {
  const run = startCli([STUB_APP, "-p", "1", "--pid-file", pidFile]);
  t.after(() => {
    run.killGroup();
  });
  return run;
}

/** Returns the PID of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  assert.ok(child.pid !== undefined);
  return child.pid;
}

test("cli pid file written and removed", async (t) => {
  const pidFile = join(makeTempDir(t), "melodramatiq.pid");
  const run = startWithPidFile(t, pidFile);
  await run.waitForStderr(READY_LINE);

  assert.equal(readFileSync(pidFile, "utf8"), String(run.pid), "the file contains the main PID without a newline");
  assert.equal(statSync(pidFile).mode & 0o777, 0o644);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.equal(existsSync(pidFile), false, "the PID file is removed at exit");
});

test("cli pid file of live process exits 4", async (t) => {
  const pidFile = join(makeTempDir(t), "melodramatiq.pid");
  writeFileSync(pidFile, String(process.pid));
  const run = startWithPidFile(t, pidFile);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_PID_FILE, signal: null }, run.stderr());
  assert.match(run.stderr(), new RegExp(`\\[melodramatiq\\.MainProcess\\] \\[ERROR\\] melodramatiq is already running with PID ${process.pid}`));
  assert.doesNotMatch(run.stderr(), /booting up/, "no worker process starts");
  assert.equal(readFileSync(pidFile, "utf8"), String(process.pid), "the other process's file is left alone");
});

test("cli pid file with garbage exits 4", async (t) => {
  const dir = makeTempDir(t);
  for (const content of ["not a pid", "", "12ab", "-5", "0"]) {
    const pidFile = join(dir, `garbage-${content.length}.pid`);
    writeFileSync(pidFile, content);
    const run = startWithPidFile(t, pidFile);
    const exit = await run.waitForExit();

    assert.deepEqual(exit, { code: EXIT_PID_FILE, signal: null }, `${JSON.stringify(content)}: ${run.stderr()}`);
    assert.match(run.stderr(), /contains .*, not a PID\. Delete it if no melodramatiq command is running/);
    assert.equal(readFileSync(pidFile, "utf8"), content, "the file is left alone");
  }
});

test("cli pid file unwritable exits 4", async (t) => {
  const dir = makeTempDir(t);
  writeFileSync(join(dir, "a-file"), "");
  for (const pidFile of [join(dir, "missing", "melodramatiq.pid"), join(dir, "a-file", "melodramatiq.pid")]) {
    const run = startWithPidFile(t, pidFile);
    const exit = await run.waitForExit();

    assert.deepEqual(exit, { code: EXIT_PID_FILE, signal: null }, run.stderr());
    assert.match(run.stderr(), /Failed to write the PID file .*Pass a --pid-file in a writable directory\./);
  }
});

test("cli stale pid file replaced", async (t) => {
  const pidFile = join(makeTempDir(t), "melodramatiq.pid");
  writeFileSync(pidFile, `${await deadPid()}\n`);
  const run = startWithPidFile(t, pidFile);
  await run.waitForStderr(READY_LINE);

  assert.equal(readFileSync(pidFile, "utf8"), String(run.pid));

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.equal(existsSync(pidFile), false);
});

test("writePidFile treats own pid as stale", (t) => {
  // After a container restart, the main process may get the PID that the
  // old file names, e.g. 1; that file is stale, not a running instance.
  const pidFile = join(makeTempDir(t), "own.pid");
  writeFileSync(pidFile, String(process.pid));

  const written = writePidFile(pidFile);
  assert.equal(readFileSync(pidFile, "utf8"), String(process.pid));

  written.remove();
  assert.equal(existsSync(pidFile), false);
});

test("writePidFile remove keeps a replaced file", (t) => {
  const pidFile = join(makeTempDir(t), "replaced.pid");
  const written = writePidFile(pidFile);
  writeFileSync(pidFile, "1");

  written.remove();
  assert.equal(readFileSync(pidFile, "utf8"), "1", "a file that names another process is not ours to delete");
});

test("writePidFile rejects a directory", (t) => {
  const dir = makeTempDir(t);

  assert.throws(() => writePidFile(dir), PidFileError);
});
