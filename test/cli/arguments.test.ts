import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  DEFAULT_THREADS,
  DEFAULT_WORKER_SHUTDOWN_TIMEOUT,
  defaultProcesses,
  MAX_PROCESSES,
  MAX_THREADS,
  MAX_WORKER_SHUTDOWN_TIMEOUT,
  parseCommandLine,
  type CliOptions,
} from "../../src/cli/arguments.js";
import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "../../src/cli/exit-codes.js";
import { parseModuleSpec } from "../../src/cli/module-spec.js";
import { DEFAULT_WATCH_INCLUDE } from "../../src/cli/watch-patterns.js";
import { UsageError } from "../../src/cli/usage-error.js";
import { REPO_ROOT, startCli } from "./cli-process.js";

function parseRun(argv: string[]): CliOptions {
  const command = parseCommandLine(argv);
  assert.equal(command.kind, "run");
  return (command as { options: CliOptions }).options;
}

test("parseCommandLine defaults", () => {
  const options = parseRun(["./app.js"]);

  assert.deepEqual(options.brokerModule, { specifier: "./app.js" });
  assert.deepEqual(options.modules, []);
  assert.equal(options.processes, defaultProcesses());
  assert.equal(options.threads, DEFAULT_THREADS);
  assert.equal(options.queues, undefined);
  assert.deepEqual(options.paths, ["."]);
  assert.equal(options.workerShutdownTimeout, DEFAULT_WORKER_SHUTDOWN_TIMEOUT);
  assert.equal(options.verbose, false);
  assert.equal(options.pidFile, undefined);
  assert.equal(options.logFile, undefined);
  assert.equal(options.skipLogging, false);
  assert.equal(options.watch, undefined);
});

test("parseCommandLine files and logging flags", () => {
  const options = parseRun(["app.js", "--pid-file", "/run/melo.pid", "--log-file=melo.log", "--skip-logging"]);

  assert.equal(options.pidFile, "/run/melo.pid");
  assert.equal(options.logFile, "melo.log");
  assert.equal(options.skipLogging, true);
});

test("parseCommandLine watch flags", () => {
  const options = parseRun(["app.js", "--watch", "src", "-i", "**/*.sql", "--watch-include", "*.yaml", "-x", "dist", "--watch-exclude=**/*.test.ts", "--watch-use-polling"]);

  assert.deepEqual(options.watch, { directory: "src", polling: true, include: ["**/*.sql", "*.yaml"], exclude: ["dist", "**/*.test.ts"] });
  assert.deepEqual(parseRun(["app.js", "--watch", "."]).watch, { directory: ".", polling: false, include: [], exclude: [] });
});

test("parseCommandLine long and short flags", () => {
  const long = parseRun(["app.ts:setup", "more.js", "--processes", "3", "--threads", "16", "--worker-shutdown-timeout", "0", "--verbose"]);
  const short = parseRun(["app.ts:setup", "more.js", "-p", "3", "-t16", "-v"]);

  for (const options of [long, short]) {
    assert.deepEqual(options.brokerModule, { specifier: "app.ts", brokerName: "setup" });
    assert.deepEqual(options.modules, ["more.js"]);
    assert.equal(options.processes, 3);
    assert.equal(options.threads, 16);
    assert.equal(options.verbose, true);
  }
  assert.equal(long.workerShutdownTimeout, 0);
});

test("parseCommandLine variadic queues and paths", () => {
  const options = parseRun(["app.js", "-Q", "default", "emails", "-P", "src", "lib", "-v"]);

  assert.deepEqual(options.queues, ["default", "emails"]);
  assert.deepEqual(options.paths, ["src", "lib"]);
  assert.deepEqual(options.modules, []);
});

test("parseCommandLine inline queue value", () => {
  const options = parseRun(["app.js", "--queues=default", "more.js", "--queues", "emails"]);

  assert.deepEqual(options.queues, ["default", "emails"]);
  assert.deepEqual(options.modules, ["more.js"]);
});

test("parseCommandLine accepts the maxima", () => {
  const options = parseRun(["app.js", "-p", String(MAX_PROCESSES), "-t", String(MAX_THREADS), "--worker-shutdown-timeout", String(MAX_WORKER_SHUTDOWN_TIMEOUT)]);

  assert.equal(options.processes, 1024);
  assert.equal(options.threads, 32_767);
  assert.equal(options.workerShutdownTimeout, 2_147_483_647);
  assert.ok(defaultProcesses() <= MAX_PROCESSES);
});

test("parseCommandLine help and version", () => {
  assert.deepEqual(parseCommandLine(["-h"]), { kind: "help" });
  assert.deepEqual(parseCommandLine(["app.js", "--help"]), { kind: "help" });
  assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
});

test("parseCommandLine rejects invalid command lines", () => {
  const cases: [string[], RegExp][] = [
    [[], /required: MODULE/],
    [["app.js", "--nope"], /Unknown option '--nope'/],
    [["app.js", "-t", "x"], /--threads\/-t: invalid value "x"/],
    [["app.js", "-p", "0"], /--processes\/-p: invalid value "0": expected a whole number from 1 to 1024/],
    [["app.js", "-p", "1025"], /--processes\/-p: invalid value "1025": the maximum is 1024\. Each worker process is a Node process/],
    [["app.js", "-p", "99999999999999999999"], /--processes\/-p: invalid value "99999999999999999999": the maximum is 1024\./],
    [["app.js", "-t", "32768"], /--threads\/-t: invalid value "32768": the maximum is 32767\. A worker process prefetches 2 × threads messages/],
    [["app.js", "-t", "0"], /--threads\/-t: invalid value "0": expected a whole number from 1 to 32767/],
    [["app.js", "--worker-shutdown-timeout", "2147483648"], /--worker-shutdown-timeout: invalid value "2147483648": the maximum is 2147483647\. Node's timers/],
    [["app.js", "-t", "1.5"], /--threads\/-t/],
    [["app.js", "--worker-shutdown-timeout", "-1"], /worker-shutdown-timeout/],
    [["app.js", "-Q", "bad name"], /--queues\/-Q: Invalid queue name "bad name"/],
    [["app.js", "-Q", "default.DQ"], /reserved for delay and dead-letter queues/],
    [["app.js", "more.js:broker"], /only the first MODULE can name a broker/],
    [["app.js:my-broker"], /invalid broker name "my-broker"/],
    [[":broker"], /the module before ':' is missing/],
    [["app.js", "--pid-file", ""], /--pid-file: expected a path, got an empty value/],
    [["app.js", "--log-file"], /--log-file/],
    [["app.js", "-i", "*.sql"], /-i\/--watch-include: only valid with --watch DIR/],
    [["app.js", "-x", "dist"], /-x\/--watch-exclude: only valid with --watch DIR/],
    [["app.js", "--watch-use-polling"], /--watch-use-polling: only valid with --watch DIR/],
    [["app.js", "--watch", "src", "-i", ""], /-i\/--watch-include: expected a pattern/],
    [["app.js", "--worker-fork-timeout", "1000"], /Unknown option '--worker-fork-timeout'/],
  ];

  for (const [argv, message] of cases) {
    assert.throws(() => parseCommandLine(argv), (error: unknown) => error instanceof UsageError && message.test(error.message), argv.join(" "));
  }
});

test("parseModuleSpec splits at the last colon", () => {
  assert.deepEqual(parseModuleSpec("./app.js"), { specifier: "./app.js" });
  assert.deepEqual(parseModuleSpec("./app.js:broker"), { specifier: "./app.js", brokerName: "broker" });
  assert.deepEqual(parseModuleSpec("@acme/jobs/worker:app.broker"), { specifier: "@acme/jobs/worker", brokerName: "app.broker" });
  assert.deepEqual(parseModuleSpec("C:\\apps\\app.js"), { specifier: "C:\\apps\\app.js" });
  assert.deepEqual(parseModuleSpec("C:\\apps\\app.js:broker"), { specifier: "C:\\apps\\app.js", brokerName: "broker" });
  assert.deepEqual(parseModuleSpec("file:///srv/app.js"), { specifier: "file:///srv/app.js" });
  assert.deepEqual(parseModuleSpec("file:///srv/app.js:$broker"), { specifier: "file:///srv/app.js", brokerName: "$broker" });
});

test("cli help exits 0 and lists every flag", async () => {
  const run = startCli(["--help"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null });
  const flags = ["--processes", "-p N", "--threads", "-t N", "--queues", "-Q", "--path", "-P", "--worker-shutdown-timeout", "--verbose", "-v", "--help", "-h", "--version"];
  flags.push("--pid-file", "--log-file", "--skip-logging", "--watch DIR", "--watch-use-polling", "-i PATTERN", "--watch-include", "-x PATTERN", "--watch-exclude");
  flags.push(...DEFAULT_WATCH_INCLUDE);
  for (const flag of flags) {
    assert.ok(run.stdout().includes(flag), `help text lacks ${flag}:\n${run.stdout()}`);
  }
  assert.match(run.stdout(), /^usage: melodramatiq /);
  assert.equal(run.stderr(), "");
});

test("cli version prints the package version", async () => {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const run = startCli(["--version"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null });
  assert.equal(run.stdout(), `${manifest.version}\n`);
});

test("cli unknown flag exits 2 with usage", async () => {
  const run = startCli(["app.js", "--nope"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /^usage: melodramatiq /);
  assert.match(run.stderr(), /melodramatiq: error: Unknown option '--nope'/);
  assert.equal(run.stdout(), "");
});

test("cli invalid value exits 2 naming the flag", async () => {
  const run = startCli(["app.js", "--threads", "x"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /melodramatiq: error: argument --threads\/-t: invalid value "x"/);
});

test("cli too many processes exits 2 before forking", async () => {
  const run = startCli(["test/cli/fixtures/stub-app.ts", "-p", "99999999"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /melodramatiq: error: argument --processes\/-p: invalid value "99999999": the maximum is 1024\./);
  assert.doesNotMatch(run.stderr(), /booting up|Started worker process/);
});

test("cli without module exits 2", async () => {
  const run = startCli(["-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /the following arguments are required: MODULE\[:BROKER\]/);
});
