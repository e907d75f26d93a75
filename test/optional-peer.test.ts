/**
 * amqplib and ioredis are optional peers: importing any entry point must not
 * load them, so an app installs only the client of the broker it uses. Each
 * check runs in a fresh process, because the module cache is per process.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

const repositoryRoot = path.resolve(import.meta.dirname, "..");

/** Imports `entries` in a new process, optionally runs `action`, and returns the peer packages it loaded. */
function peersLoadedBy(entries: readonly string[], action = ""): string[] {
  const script = `
    import { createRequire } from "node:module";
    ${entries.map((entry, index) => `const m${index} = await import(${JSON.stringify(path.join(repositoryRoot, entry))});`).join("\n")}
    ${action}
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    const peers = ["amqplib", "ioredis", "prom-client"].filter((name) => loaded.some((file) => file.includes(\`/node_modules/\${name}/\`)));
    process.stdout.write(JSON.stringify(peers));
  `;
  const output = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: repositoryRoot, encoding: "utf8" });
  return JSON.parse(output) as string[];
}

test("entry points load no client library", () => {
  const entries = [
    "src/index.ts",
    "src/brokers/rabbitmq/index.ts",
    "src/brokers/redis/index.ts",
    "src/results/index.ts",
    "src/results/backends/redis.ts",
    "src/web/index.ts",
    "src/web/express.ts",
    "src/metrics/index.ts",
  ];
  assert.deepEqual(peersLoadedBy(entries), []);
});

test("Redis results backend loads no client library", () => {
  const used = peersLoadedBy(
    ["src/results/backends/redis.ts"],
    "const backend = new m0.RedisBackend({ url: 'redis://127.0.0.1:6379/0' }); await backend['readText']('optional-peer-missing-key'); await backend.close();",
  );
  assert.deepEqual(used, []);
});

test("Redis broker loads no client library", () => {
  const used = peersLoadedBy(
    ["src/brokers/redis/index.ts"],
    "const broker = new m0.RedisBroker({ url: 'redis://127.0.0.1:6379/0' }); await broker.connect(); await broker.close();",
  );
  assert.deepEqual(used, []);
});
