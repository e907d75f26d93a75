import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

test("join keeps a script alive during backoff", () => {
  // Without a keep-alive, Node exits with code 13 (an unsettled top-level await).
  const run = spawnSync(process.execPath, ["--import", "tsx", "test/brokers/stub/fixtures/join-retry.ts"], { encoding: "utf8", timeout: 30_000 });

  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), "joined after 2 attempts");
});
