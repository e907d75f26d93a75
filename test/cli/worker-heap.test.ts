import assert from "node:assert/strict";
import { test } from "node:test";

import { WORKER_SEMI_SPACE_MIB, WORKER_V8_POOL_SIZE, workerExecArgv } from "../../src/cli/worker-heap.js";
import { startCli } from "./cli-process.js";

const cap = `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`;
const pool = `--v8-pool-size=${WORKER_V8_POOL_SIZE}`;

test("worker processes get the young-generation cap and the V8 pool size", () => {
  assert.deepEqual(workerExecArgv(["--import", "tsx"], ""), ["--import", "tsx", cap, pool]);
});

test("a setting the user gave wins", () => {
  assert.deepEqual(workerExecArgv(["--max-semi-space-size=16"], ""), ["--max-semi-space-size=16", pool]);
  assert.deepEqual(workerExecArgv([], "--max_semi_space_size=8 --enable-source-maps"), [pool]);
  assert.deepEqual(workerExecArgv(["--v8-pool-size=4"], ""), ["--v8-pool-size=4", cap]);
  assert.deepEqual(workerExecArgv([], "--v8-pool-size=2 --max-semi-space-size=8"), []);
});

test("inspector flags stay with the main process", () => {
  assert.deepEqual(workerExecArgv(["--inspect=9229", "--inspect-brk", "--enable-source-maps"], ""), ["--enable-source-maps", cap, pool]);
});

for (const userOptions of ["", "--max-semi-space-size=4"]) {
  test(`worker processes of the CLI get the cap${userOptions === "" ? "" : " unless NODE_OPTIONS sets one"}`, async () => {
    const run = startCli(["test/cli/fixtures/stub-app.ts", "-p", "1", "-t", "1"], {
      env: { MELO_CLI_PRINT_EXEC_ARGV: "1", NODE_OPTIONS: userOptions },
    });
    try {
      await run.waitForStderr(/Worker process is ready for action\./);
      const line = run.stdout().split("\n").find((text) => text.startsWith("execArgv "));
      assert.ok(line !== undefined, `the worker printed its execArgv:\n${run.stdout()}`);
      const execArgv = JSON.parse(line.slice("execArgv ".length)) as string[];

      assert.equal(execArgv.includes(cap), userOptions === "", `execArgv ${line}`);
      assert.ok(execArgv.includes(pool), `execArgv ${line}`);
    } finally {
      run.signal("SIGTERM");
      await run.waitForExit();
    }
  });
}
