import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { pathToFileURL } from "node:url";

import { Broker, setBroker } from "../../src/broker.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "../../src/cli/exit-codes.js";
import { BrokerNotFoundError, findBroker } from "../../src/cli/load-broker.js";
import { ModuleNotFoundError, resolveModule } from "../../src/cli/resolve-module.js";
import { FIXTURES, READY_LINE, REPO_ROOT, startCli, type CliRun } from "./cli-process.js";

function makeTempDir(t: TestContext, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `melo-cli-${label}-`));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    const file = join(root, path);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, text);
  }
}

/** Starts the CLI and kills its process group when the test ends. */
function start(t: TestContext, args: string[], env: Record<string, string> = {}): CliRun {
  const run = startCli(args, { env });
  t.after(() => {
    run.killGroup();
  });
  return run;
}

/** Waits for `processes` ready lines, sends SIGTERM and expects exit code 0. */
async function expectReadyThenCleanStop(run: CliRun, processes = 1): Promise<void> {
  await run.waitForStderrCount(READY_LINE, processes);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();
  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
}

test("resolveModule file paths and extensions", (t) => {
  const root = makeTempDir(t, "resolve");
  writeFiles(root, {
    "app.js": "",
    "src/worker.ts": "",
    "jobs/index.mjs": "",
  });

  assert.equal(resolveModule("./app.js", [root]), join(root, "app.js"));
  assert.equal(resolveModule("./app", [root]), join(root, "app.js"));
  assert.equal(resolveModule("app", [root]), join(root, "app.js"));
  assert.equal(resolveModule("src/worker", [root]), join(root, "src", "worker.ts"));
  assert.equal(resolveModule("./jobs", [root]), join(root, "jobs", "index.mjs"));
  assert.equal(resolveModule(join(root, "app.js"), ["/nonexistent"]), join(root, "app.js"));
  assert.equal(resolveModule(pathToFileURL(join(root, "app.js")).href, []), join(root, "app.js"));
  assert.equal(resolveModule("./worker.ts", [join(root, "missing"), join(root, "src")]), join(root, "src", "worker.ts"));
});

test("resolveModule package exports", (t) => {
  const root = makeTempDir(t, "packages");
  writeFiles(root, {
    "node_modules/@acme/jobs/package.json": JSON.stringify({
      name: "@acme/jobs",
      exports: {
        ".": { types: "./index.d.ts", require: "./index.cjs", import: "./index.mjs" },
        "./worker": [{ import: "./lib/worker.mjs" }, "./lib/worker.cjs"],
        "./tasks/*": { node: "./lib/tasks/*.js" },
        "./private/*": null,
      },
    }),
    "node_modules/@acme/jobs/index.mjs": "",
    "node_modules/@acme/jobs/lib/worker.mjs": "",
    "node_modules/@acme/jobs/lib/tasks/email.js": "",
    "node_modules/plain/package.json": JSON.stringify({ name: "plain", main: "lib/main" }),
    "node_modules/plain/lib/main.js": "",
    "node_modules/plain/extra.js": "",
    "app/src/.keep": "",
  });
  const base = join(root, "app", "src");
  const packageDir = join(root, "node_modules", "@acme", "jobs");

  assert.equal(resolveModule("@acme/jobs", [base]), join(packageDir, "index.mjs"));
  assert.equal(resolveModule("@acme/jobs/worker", [base]), join(packageDir, "lib", "worker.mjs"));
  assert.equal(resolveModule("@acme/jobs/tasks/email", [base]), join(packageDir, "lib", "tasks", "email.js"));
  assert.equal(resolveModule("plain", [base]), join(root, "node_modules", "plain", "lib", "main.js"));
  assert.equal(resolveModule("plain/extra", [base]), join(root, "node_modules", "plain", "extra.js"));
  assert.throws(() => resolveModule("@acme/jobs/private/x", [base]), /does not export "\.\/private\/x"/);
  assert.throws(() => resolveModule("@acme/jobs/nope", [base]), ModuleNotFoundError);
});

test("resolveModule error lists candidates", (t) => {
  const root = makeTempDir(t, "missing");

  assert.throws(
    () => resolveModule("tasks", [root]),
    (error: unknown) =>
      error instanceof ModuleNotFoundError &&
      error.message.includes(`Module "tasks" was not found`) &&
      error.message.includes(join(root, "tasks")) &&
      error.message.includes(`a package in node_modules of ${root}`),
  );
  assert.throws(() => resolveModule("./tasks.js", [root]), /Module "\.\/tasks\.js" was not found/);
});

test("findBroker export lookups", async () => {
  const broker = new StubBroker();
  const other = new StubBroker();

  assert.equal(await findBroker({ broker }, "'m'", undefined), broker);
  assert.equal(await findBroker({ default: broker }, "'m'", undefined), broker);
  assert.equal(await findBroker({ default: { broker } }, "'m'", undefined), broker);
  assert.equal(await findBroker({ broker, other }, "'m'", "other"), other);
  assert.equal(await findBroker({ app: { queues: { broker: other } } }, "'m'", "app.queues.broker"), other);
  assert.equal(await findBroker({ setup: async () => other }, "'m'", "setup"), other);
});

test("findBroker errors name the fix", async () => {
  const broker = new StubBroker();

  await assert.rejects(findBroker({}, "'./m.js'", undefined), (error: unknown) => error instanceof BrokerNotFoundError && /Module '\.\/m\.js' provides no broker/.test(error.message));
  await assert.rejects(findBroker({ broker }, "'./m.js'", "nope"), /Module '\.\/m\.js' has no export "nope"/);
  await assert.rejects(findBroker({ app: {} }, "'./m.js'", "app.broker"), /'\.\/m\.js':app has no property "broker"/);
  await assert.rejects(findBroker({ broker: 42 }, "'./m.js'", undefined), /the export 'broker' of '\.\/m\.js' is the number 42, not a Broker/);
  await assert.rejects(findBroker({ setup: () => "ok" }, "'./m.js'", "setup"), /returned the string "ok" and set no global broker/);

  const lookalike = { consume() {}, connect() {}, close() {}, declareActor() {}, emitAfter() {} };
  await assert.rejects(findBroker({ broker: lookalike }, "'./m.js'", undefined), /another copy of melodramatiq/);
});

test("findBroker falls back to the global broker", async () => {
  const global = new StubBroker();
  setBroker(global);

  assert.equal(await findBroker({ answer: 42 }, "'m'", undefined), global);
  assert.equal(await findBroker({ setup: () => undefined }, "'m'", "setup"), global);
  assert.ok(global instanceof Broker);
});

test("cli missing module exits 2 naming it", async (t) => {
  const run = start(t, ["./no-such-module.js", "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[ERROR\] Module "\.\/no-such-module\.js" was not found/);
  assert.doesNotMatch(run.stderr(), /WorkerProcess/, "no worker process starts when a module cannot be resolved");
});

test("cli module that throws exits 2 with the cause", async (t) => {
  const run = start(t, [join(FIXTURES, "throws.ts"), "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /\[melodramatiq\.WorkerProcess\(0\)\] \[ERROR\] Failed to import module '.*throws\.ts'/);
  assert.match(run.stderr(), /Error: fixture failed on purpose: the setting MELO_FIXTURE_URL is missing/);
  assert.match(run.stderr(), /\[melodramatiq\.MainProcess\] \[ERROR\] Worker process 0 with PID \d+ exited unexpectedly \(code 2\)/);
});

test("cli module that throws a string exits 2 with it", async (t) => {
  const run = start(t, [join(FIXTURES, "throws-string.ts"), "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(
    run.stderr(),
    /\[melodramatiq\.WorkerProcess\(0\)\] \[ERROR\] Failed to import module '.*throws-string\.ts': it threw 'fixture threw a string on purpose', which is not an Error\./,
  );
});

test("cli broker without actors warns", async (t) => {
  const run = start(t, ["test/cli/fixtures/no-actors.ts", "-p", "1"]);

  await run.waitForStderr(READY_LINE);
  assert.match(
    run.stderr(),
    /\[melodramatiq\.WorkerProcess\(0\)\] \[WARNING\] No actor is declared on the broker of module 'test\/cli\/fixtures\/no-actors\.ts', so this worker process consumes nothing\. Pass the modules that declare actors after 'test\/cli\/fixtures\/no-actors\.ts', or --queues\./,
  );
  await expectReadyThenCleanStop(run);
});

test("cli broker without actors and --queues", async (t) => {
  const run = start(t, ["test/cli/fixtures/no-actors.ts", "-p", "1", "-Q", "default"]);

  await expectReadyThenCleanStop(run);
  assert.doesNotMatch(run.stderr(), /No actor is declared/);
});

test("cli missing export exits 2 naming it", async (t) => {
  const run = start(t, ["test/cli/fixtures/stub-app.ts:nope", "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /Module 'test\/cli\/fixtures\/stub-app\.ts' has no export "nope"/);
});

test("cli module without broker exits 2", async (t) => {
  const run = start(t, ["test/cli/fixtures/no-broker.ts", "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /Module 'test\/cli\/fixtures\/no-broker\.ts' provides no broker\. Export it as 'broker'/);
});

test("cli setup function without broker exits 2", async (t) => {
  const run = start(t, ["test/cli/fixtures/setup-app.ts:setupNothing", "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null });
  assert.match(run.stderr(), /setup-app\.ts':setupNothing returned the number 42 and set no global broker/);
});

test("cli broker by dotted export path", async (t) => {
  const run = start(t, ["test/cli/fixtures/setup-app.ts:app.broker", "-p", "1", "-v"]);

  await run.waitForStderr(/Starting worker on queues dotted with concurrency 8\./);
  await expectReadyThenCleanStop(run);
});

test("cli broker from setup function", async (t) => {
  const returned = start(t, ["test/cli/fixtures/setup-app.ts:setupBroker", "-p", "1", "-v"]);
  const global = start(t, ["test/cli/fixtures/setup-app.ts:setupGlobalBroker", "-p", "1", "-v"]);

  await returned.waitForStderr(/Starting worker on queues returned with/);
  await global.waitForStderr(/Starting worker on queues global with/);
  await expectReadyThenCleanStop(returned);
  await expectReadyThenCleanStop(global);
});

test("cli broker from default export", async (t) => {
  const run = start(t, ["test/cli/fixtures/default-export.ts", "-p", "1", "-t", "3", "-v"]);

  await run.waitForStderr(/Starting worker on queues from_default with concurrency 3\./);
  await expectReadyThenCleanStop(run);
});

test("cli extra modules and queues", async (t) => {
  const all = start(t, ["test/cli/fixtures/stub-app.ts", "test/cli/fixtures/extra-actors.ts", "-p", "1", "-v"]);
  const selected = start(t, ["test/cli/fixtures/stub-app.ts", "test/cli/fixtures/extra-actors.ts", "-p", "1", "-v", "-Q", "extra"]);

  await all.waitForStderr(/Starting worker on queues default, extra with/);
  await selected.waitForStderr(/Starting worker on queues extra with/);
  await expectReadyThenCleanStop(all);
  await expectReadyThenCleanStop(selected);
});

test("cli package specifier with --path", async (t) => {
  const root = makeTempDir(t, "package");
  const stubUrl = pathToFileURL(join(REPO_ROOT, "src", "brokers", "stub", "index.ts")).href;
  writeFiles(root, {
    "node_modules/@acme/jobs/package.json": JSON.stringify({ name: "@acme/jobs", type: "module", exports: { "./worker": { import: "./worker.mjs" } } }),
    "node_modules/@acme/jobs/worker.mjs": `import { StubBroker } from ${JSON.stringify(stubUrl)};\nexport const broker = new StubBroker();\nbroker.declareQueue("from_package");\n`,
  });

  const run = start(t, ["@acme/jobs/worker", "-p", "1", "-v", "-P", root]);

  await run.waitForStderr(/Starting worker on queues from_package with/);
  await expectReadyThenCleanStop(run);
  assert.match(run.stderr(), /\[WARNING\] No actor is declared on the broker of module '@acme\/jobs\/worker', so this worker process dead-letters every message on the queues from_package\./);
});
