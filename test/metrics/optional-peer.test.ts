/**
 * prom-client is an optional peer: importing `melodramatiq/metrics` must
 * not load it, and a missing prom-client must fail with an install hint
 * only when the middleware is constructed. Each check runs in a fresh
 * process, because the module cache is per process.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

const repositoryRoot = path.resolve(import.meta.dirname, "..", "..");
const metricsEntry = path.join(repositoryRoot, "src/metrics/index.ts");

/**
 * Makes require("prom-client") fail as it does when the package is not
 * installed, so that loadPeer's real error path runs.
 */
const hidePromClient = `
  import Module from "node:module";
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request === "prom-client") {
      const error = new Error("Cannot find module 'prom-client'");
      error.code = "MODULE_NOT_FOUND";
      throw error;
    }
    return resolve.call(this, request, ...rest);
  };
`;

/** Runs `body` as an ES module in a new process (after `preamble`) and returns what it writes to stdout. */
function runModule(body: string, preamble = ""): string {
  const script = `
    ${preamble}
    import { createRequire } from "node:module";
    const metrics = await import(${JSON.stringify(metricsEntry)});
    const promClientLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((file) => file.includes("/node_modules/prom-client/"));
    ${body}
  `;
  return execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: repositoryRoot, encoding: "utf8" });
}

test("metrics import loads no prom-client", () => {
  const output = runModule(`process.stdout.write(JSON.stringify(promClientLoaded()));`);
  assert.equal(JSON.parse(output), false);
});

test("Prometheus constructor loads prom-client", () => {
  const output = runModule(`new metrics.Prometheus(); process.stdout.write(JSON.stringify(promClientLoaded()));`);
  assert.equal(JSON.parse(output), true);
});

test("missing prom-client gives install hint", () => {
  const output = runModule(
    `
    const results = [];
    for (const create of [() => new metrics.Prometheus(), () => metrics.aggregateSnapshots([])]) {
      try {
        create();
        results.push(null);
      } catch (error) {
        results.push({ name: error.name, code: error.code, message: error.message });
      }
    }
    process.stdout.write(JSON.stringify(results));
    `,
    hidePromClient,
  );
  const [constructed, aggregated] = JSON.parse(output) as ({ name: string; code: string; message: string } | null)[];

  assert.equal(constructed?.name, "ConfigurationError");
  assert.equal(constructed?.code, "MELO_ERR_CONFIGURATION");
  assert.match(constructed?.message ?? "", /The Prometheus middleware needs the package "prom-client"/);
  assert.match(constructed?.message ?? "", /npm install prom-client/);
  assert.equal(aggregated?.name, "ConfigurationError");
});
