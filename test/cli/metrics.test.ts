/**
 * The main process serves the merged Prometheus metrics of its worker
 * processes when their broker has the Prometheus middleware, and keeps
 * serving them across a reload.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { EXIT_OK } from "../../src/cli/exit-codes.js";
import { READY_LINE, readLines, startCli, waitFor, type CliRun } from "./cli-process.js";

const STUB_APP = "test/cli/fixtures/stub-app.ts";
const SERVING_LINE = /\[PID (\d+)\] \[melodramatiq\.metrics\.ExpositionServer\] \[INFO\] Serving Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)\./;

function start(t: TestContext, args: string[], env: Record<string, string>): { run: CliRun; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "melo-cli-metrics-"));
  const output = join(dir, "output.txt");
  const run = startCli([STUB_APP, ...args], { env: { MELO_CLI_OUTPUT: output, ...env } });
  t.after(() => {
    run.killGroup();
    rmSync(dir, { recursive: true, force: true });
  });
  return { run, output };
}

/** Returns the value of the series `name{labels}` in a text-format scrape, or undefined. */
function seriesValue(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{`) && candidate.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  assert.equal(response.status, 200);
  return response.text();
}

test("cli serves merged metrics", async (t) => {
  const { run, output } = start(t, ["-p", "2"], { MELO_CLI_PROMETHEUS_PORT: "0", MELO_CLI_SLEEP_MS: "10" });
  const [, serverPid, url] = await run.waitForStderr(SERVING_LINE);
  await run.waitForStderrCount(READY_LINE, 2);
  await waitFor(() => readLines(output).filter((line) => line.startsWith("finished")).length === 2, "each worker process to run its message");

  assert.equal(Number(serverPid), run.pid, "the main process runs the exposition server");
  const merged = await scrape(url!);
  assert.equal(seriesValue(merged, "dramatiq_messages_total", 'actor_name="sleepy"'), 2, `the counts of both worker processes are summed:\n${merged}`);

  run.signal("SIGHUP");
  await run.waitForStderrCount(READY_LINE, 4);
  await waitFor(() => readLines(output).filter((line) => line.startsWith("finished")).length === 4, "the new worker processes to run their messages");
  const afterReload = await scrape(url!);
  assert.equal(seriesValue(afterReload, "dramatiq_messages_total", 'actor_name="sleepy"'), 2, `the new worker processes count from 0:\n${afterReload}`);

  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.match(run.stderr(), /Stopped serving Prometheus metrics at/);
  assert.equal([...run.stderr().matchAll(new RegExp(SERVING_LINE.source, "g"))].length, 1, "one server, kept across the reload");
});

test("cli without Prometheus serves nothing", async (t) => {
  const { run } = start(t, ["-p", "1"], {});
  await run.waitForStderr(READY_LINE);
  run.signal("SIGTERM");
  const exit = await run.waitForExit();

  assert.deepEqual(exit, { code: EXIT_OK, signal: null }, run.stderr());
  assert.doesNotMatch(run.stderr(), /Prometheus/);
});
