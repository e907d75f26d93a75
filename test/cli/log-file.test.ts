/**
 * `--log-file` and `--skip-logging`, and the layout of the log lines: the
 * process, the component, and the message id and actor name of lines
 * about a message.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "../../src/cli/exit-codes.js";
import { readLines, startCli, waitFor, type CliRun } from "./cli-process.js";

const STUB_APP = "test/cli/fixtures/stub-app.ts";

/** A whole log line: time, process, component, level, text. */
const LOG_LINE = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[PID \d+\] \[melodramatiq[\w.()]*\] \[(?:DEBUG|INFO|WARNING|ERROR)\] \S/;

function makeTempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-log-"));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function start(t: TestContext, args: string[], env: Record<string, string>): CliRun {
  const run = startCli([STUB_APP, ...args], { env });
  t.after(() => {
    run.killGroup();
  });
  return run;
}

function linesMatching(lines: readonly string[], pattern: RegExp): string[] {
  return lines.filter((line) => pattern.test(line));
}

test("cli log file receives all logs", async (t) => {
  const dir = makeTempDir(t);
  const logFile = join(dir, "melodramatiq.log");
  writeFileSync(logFile, "previous line\n");
  const run = start(t, ["-p", "2", "--log-file", logFile], {
    MELO_CLI_OUTPUT: join(dir, "output.txt"),
    MELO_CLI_PRINT: "hello from the app",
    MELO_CLI_FAIL: "log boom",
  });

  await waitFor(() => linesMatching(readLines(logFile), /Worker process is ready for action\./).length === 2, `2 ready lines in ${logFile}`);
  await waitFor(() => linesMatching(readLines(logFile), /Failed to process message fails/).length === 2, `2 failed messages in ${logFile}`);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();
  const lines = readLines(logFile);
  const text = lines.join("\n");

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, text);
  assert.equal(run.stderr(), "", "nothing goes to stderr");
  assert.equal(lines[0], "previous line", "the file is appended to");
  assert.match(text, new RegExp(`\\[PID ${run.pid}\\] \\[melodramatiq\\.MainProcess\\] \\[INFO\\] melodramatiq '[^']+' is booting up\\.`));
  assert.match(text, /\[melodramatiq\.WorkerProcess\(0\)\] \[INFO\] Worker process is ready for action\./);
  assert.match(text, /\[melodramatiq\.WorkerProcess\(1\)\] \[INFO\] Worker process is ready for action\./);
  assert.match(text, /\[melodramatiq\.MainProcess\] \[INFO\] Sending signal 'SIGTERM' to subprocesses\.\.\./);
  assert.equal(linesMatching(lines, /\[melodramatiq\.worker\.Worker\] \[INFO\] Worker has been shut down\./).length, 2);
  assert.equal(linesMatching(lines, /^hello from the app$/).length, 2, "the worker processes' stdout goes to the file");
  assert.equal(
    linesMatching(lines, /\[melodramatiq\.worker\.Worker\] \[ERROR\] Failed to process message fails\('log boom'\) with unhandled exception\. \(messageId=[0-9a-f-]{36}, actorName=fails\)$/).length,
    2,
    "lines about a message name its id and actor",
  );

  const loggerLines = lines.filter((line) => line.startsWith("["));
  for (const line of loggerLines) {
    assert.match(line, LOG_LINE, "every log line is whole");
  }
  assert.ok(lines.includes("Error: log boom"), "the stack of the failure follows its line");
});

test("cli log file unwritable exits 2", async (t) => {
  const logFile = join(makeTempDir(t), "missing", "melodramatiq.log");
  const run = start(t, ["-p", "1", "--log-file", logFile], {});
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null }, run.stderr());
  assert.match(run.stderr(), /melodramatiq: error: failed to open the log file ".*missing\/melodramatiq\.log": ENOENT/);
});

test("cli skip logging keeps the default logger", async (t) => {
  const dir = makeTempDir(t);
  const env = { MELO_CLI_OUTPUT: join(dir, "output.txt"), MELODRAMATIQ_LOG_LEVEL: "info" };
  const run = start(t, ["-p", "1", "-v", "--skip-logging"], env);
  await run.waitForStderr(/Worker process is ready for action\./);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] melodramatiq '[^']+' is booting up\./);
  assert.doesNotMatch(run.stderr(), /\[DEBUG\]/, "-v sets the level of the CLI's logger, which is not installed");
});

test("cli verbose logs debug lines", async (t) => {
  const dir = makeTempDir(t);
  const run = start(t, ["-p", "1", "-v"], { MELO_CLI_OUTPUT: join(dir, "output.txt"), MELODRAMATIQ_LOG_LEVEL: "info" });
  await run.waitForStderr(/Worker process is ready for action\./);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[DEBUG\] Started worker process 0 with PID \d+\./);
});
