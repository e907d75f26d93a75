/**
 * ioredis is an optional peer: neither `melodramatiq/rate-limits` nor
 * `melodramatiq/rate-limits/redis` loads it, because the Redis backend
 * uses the built-in client. Each check runs in a fresh process, because the
 * module cache is per process.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

const repositoryRoot = path.resolve(import.meta.dirname, "../..");

/** Imports `entry` in a new process, runs `action` with the module as `entry`, and returns whether ioredis was loaded. */
function loadsIoredis(entry: string, action = ""): boolean {
  const script = `
    import { createRequire } from "node:module";
    const entry = await import(${JSON.stringify(path.join(repositoryRoot, entry))});
    ${action}
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify(loaded.some((file) => file.includes("/node_modules/ioredis/"))));
  `;
  const output = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: repositoryRoot, encoding: "utf8" });
  return JSON.parse(output) as boolean;
}

test("rate-limits entry loads no ioredis", () => {
  assert.equal(
    loadsIoredis("src/rate-limits/index.ts", "const backend = new entry.StubRateLimiterBackend(); await new entry.ConcurrentRateLimiter(backend, 'k').acquire(() => 1);"),
    false,
  );
});

test("redis entry loads no ioredis in use", () => {
  assert.equal(loadsIoredis("src/rate-limits/backends/redis.ts", "new entry.RedisRateLimiterBackend();"), false);
  assert.equal(
    loadsIoredis(
      "src/rate-limits/backends/redis.ts",
      "const backend = new entry.RedisRateLimiterBackend(); await backend.wait('melo-test-rl-entry-points-missing', 1000); await backend.close();",
    ),
    false,
  );
});
