/**
 * `--watch`: a content change under the watched directory reloads the
 * worker processes, and the main process keeps its PID. Touching a file,
 * rewriting it unchanged, or changing an excluded or unwatched file does
 * not reload. Each test ends with one real change, so the "no reload"
 * cases show up as extra names in the reload reason or as a second reload.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "../../src/cli/exit-codes.js";
import { isProcessAlive, READY_LINE, startCli, type CliRun } from "./cli-process.js";

const STUB_APP = "test/cli/fixtures/stub-app.ts";
const WATCHING_LINE = /\[melodramatiq\.SourceWatcher\] \[INFO\] Watching (\d+) file\(s\) in \d+ director(?:y|ies) for changes/;
const RELOAD_LINE = /\[melodramatiq\.MainProcess\] \[INFO\] Reloading workers\.\.\. \(reason=(.*)\)/;

interface WatchedApp {
  readonly run: CliRun;
  readonly watched: string;
  write(path: string, text: string): void;
  touch(path: string): void;
}

/** Creates a watched directory with `files` and runs the stub app with `--watch` on it and `args`. */
function startWatchedApp(t: TestContext, files: Record<string, string>, args: string[]): WatchedApp {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-watch-"));
  const watched = join(dir, "src");
  const write = (path: string, text: string): void => {
    mkdirSync(join(watched, path, ".."), { recursive: true });
    writeFileSync(join(watched, path), text);
  };
  for (const [path, text] of Object.entries(files)) {
    write(path, text);
  }

  const run = startCli([STUB_APP, "-p", "1", "--watch", watched, ...args], { env: { MELO_CLI_OUTPUT: join(dir, "output.txt") } });
  t.after(() => {
    run.killGroup();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    run,
    watched,
    write,
    touch: (path) => {
      const later = new Date(Date.now() + 60_000);
      utimesSync(join(watched, path), later, later);
    },
  };
}

/** Waits until `count` worker processes have been ready in total and returns their PIDs in order. */
async function readyPids(run: CliRun, count: number): Promise<number[]> {
  return (await run.waitForStderrCount(READY_LINE, count)).map((match) => Number(match[1]));
}

/** Stops the CLI, expects exit code 0, and returns the reasons of every reload in the log. */
async function stopAndListReloads(run: CliRun): Promise<string[]> {
  run.signal("SIGTERM");
  const exit = await run.waitForExit();
  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  return [...run.stderr().matchAll(new RegExp(RELOAD_LINE.source, "g"))].map((match) => match[1]!);
}

test("cli watch content change reloads", async (t) => {
  const app = startWatchedApp(t, { "jobs.ts": "export const a = 1;\n", "touched.ts": "export const b = 1;\n", "config.json": "{}" }, []);
  await app.run.waitForStderr(WATCHING_LINE);
  const [before] = await readyPids(app.run, 1);

  app.touch("touched.ts");
  app.write("config.json", "{}");
  app.write("jobs.ts", "export const a = 2;\n");
  const [, after] = await readyPids(app.run, 2);

  assert.notEqual(after, before, "a new worker process replaces the old one");
  assert.equal(isProcessAlive(before!), false);
  assert.ok(isProcessAlive(app.run.pid), "the main process keeps running");
  const mainPids = new Set([...app.run.stderr().matchAll(/\[PID (\d+)\] \[melodramatiq\.MainProcess\]/g)].map((match) => Number(match[1])));
  assert.deepEqual([...mainPids], [app.run.pid], "the main process keeps its PID");
  assert.match(app.run.stderr(), /\[melodramatiq\.MainProcess\] \[INFO\] Starting 1 new worker process\(es\)\./);

  assert.deepEqual(await stopAndListReloads(app.run), ["changed: jobs.ts"], "touching and rewriting unchanged content do not reload");
});

test("cli watch excluded files do not reload", async (t) => {
  const files = {
    "app.ts": "1",
    "generated/types.ts": "1",
    "app.test.ts": "1",
    "node_modules/dep/index.js": "1",
    "notes.txt": "1",
    "db/schema.sql": "1",
  };
  const app = startWatchedApp(t, files, ["-x", "generated/**", "--watch-exclude", "*.test.ts", "-i", "**/*.sql"]);
  await app.run.waitForStderr(WATCHING_LINE);
  await readyPids(app.run, 1);

  app.write("generated/types.ts", "2");
  app.write("app.test.ts", "2");
  app.write("node_modules/dep/index.js", "2");
  app.write("notes.txt", "2");
  app.write("db/schema.sql", "2");
  await readyPids(app.run, 2);

  assert.deepEqual(await stopAndListReloads(app.run), ["changed: db/schema.sql"], "only the file that -i adds reloads");
});

test("cli watch new directory reloads", async (t) => {
  const app = startWatchedApp(t, { "app.ts": "1" }, []);
  await app.run.waitForStderr(WATCHING_LINE);
  await readyPids(app.run, 1);

  app.write("jobs/reports/monthly.ts", "1");
  await readyPids(app.run, 2);
  app.write("jobs/reports/monthly.ts", "2");
  await readyPids(app.run, 3);

  assert.deepEqual(await stopAndListReloads(app.run), ["changed: jobs/reports/monthly.ts", "changed: jobs/reports/monthly.ts"], "the new directory is watched too");
});

test("cli watch polling reloads", async (t) => {
  const app = startWatchedApp(t, { "app.ts": "1", "touched.ts": "1" }, ["--watch-use-polling"]);
  const [, fileCount] = await app.run.waitForStderr(WATCHING_LINE);
  assert.equal(fileCount, "2");
  assert.match(app.run.stderr(), /for changes \(polling every \d+ ms\)/);
  await readyPids(app.run, 1);

  app.touch("touched.ts");
  app.write("app.ts", "2");
  await readyPids(app.run, 2);

  assert.deepEqual(await stopAndListReloads(app.run), ["changed: app.ts"]);
});

test("cli watch missing directory exits 2", async (t) => {
  const run = startCli([STUB_APP, "-p", "1", "--watch", "/nonexistent/melodramatiq-watch"]);
  t.after(() => {
    run.killGroup();
  });
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_IMPORT_OR_USAGE, signal: null }, run.stderr());
  assert.match(run.stderr(), /Invalid --watch "\/nonexistent\/melodramatiq-watch": .* is not a directory\./);
});
