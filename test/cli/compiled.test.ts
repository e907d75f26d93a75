/**
 * The compiled CLI (what `npm install` puts on the PATH) loading a
 * TypeScript app: no loader is active, so each worker process registers
 * tsx at run time. The test compiles its own copy of src/ into a temporary
 * directory instead of relying on dist/.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "../../src/cli/exit-codes.js";
import { READY_LINE, REPO_ROOT, startNode, type CliRun } from "./cli-process.js";

const appSource = `
import { actor } from "../dist/actor.js";
import { StubBroker } from "../dist/brokers/stub/index.js";

interface Greeting {
  readonly name: string;
}

export const broker: StubBroker = new StubBroker();
export const greet = actor(function greet(greeting: Greeting): string {
  return greeting.name;
}, { broker, queueName: "compiled" });
`;

let root: string;
const runs: CliRun[] = [];

before(async () => {
  root = mkdtempSync(join(tmpdir(), "melo-cli-compiled-"));
  const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  const args = [tsc, "-p", join(REPO_ROOT, "tsconfig.build.json"), "--outDir", join(root, "dist"), "--declaration", "false", "--declarationMap", "false", "--sourceMap", "false"];
  try {
    await promisify(execFile)(process.execPath, args, { cwd: REPO_ROOT, timeout: 120_000 });
  } catch (error) {
    // Type errors elsewhere in src/ do not stop tsc from emitting; a missing CLI does.
    if (!existsSync(join(root, "dist", "cli", "bin.js"))) {
      throw error;
    }
  }

  copyFileSync(join(REPO_ROOT, "package.json"), join(root, "package.json"));
  mkdirSync(join(root, "app"));
  writeFileSync(join(root, "app", "worker.ts"), appSource);
});

after(() => {
  for (const run of runs) {
    run.killGroup();
  }
  rmSync(root, { recursive: true, force: true });
});

function startCompiledCli(args: string[]): CliRun {
  const run = startNode([join(root, "dist", "cli", "bin.js"), ...args], { cwd: root });
  runs.push(run);
  return run;
}

test("compiled cli without tsx", async () => {
  const run = startCompiledCli(["app/worker.ts", "-p", "1"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null }, run.stderr());
  assert.match(run.stderr(), /Module 'app\/worker\.ts' is TypeScript, which needs tsx to load, and tsx is not installed\./);
});

test("compiled cli loads TypeScript via tsx", async () => {
  symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"), "dir");
  const run = startCompiledCli(["app/worker.ts", "-p", "2", "-v"]);

  await run.waitForStderr(/TypeScript modules will load through tsx\./);
  await run.waitForStderr(/Starting worker on queues compiled with concurrency 8\./);
  await run.waitForStderrCount(READY_LINE, 2);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
});

test("compiled cli prints the version", async () => {
  const run = startCompiledCli(["--version"]);
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null });
  assert.match(run.stdout(), /^\d+\.\d+\.\d+/);
});
