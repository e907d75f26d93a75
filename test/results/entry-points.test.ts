import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

const sourceRoot = path.resolve(import.meta.dirname, "../../src");

/** Returns every package imported (at run time) by `entry` and the relative modules it reaches. */
function runtimePackages(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const pending = [entry];

  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) {
      continue;
    }
    seen.add(file);

    const text = readFileSync(file, "utf8");
    // `import type` and `export type` vanish at compile time, so they load nothing.
    for (const match of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+"([^"]+)"/gms)) {
      const specifier = match[1]!;
      if (specifier.startsWith(".")) {
        pending.push(path.resolve(path.dirname(file), specifier.replace(/\.js$/, ".ts")));
      } else {
        packages.add(specifier);
      }
    }
  }
  return packages;
}

test("results entry never loads ioredis", () => {
  const packages = runtimePackages(path.join(sourceRoot, "results/index.ts"));
  assert.ok(!packages.has("ioredis"), `melodramatiq/results loads ${[...packages].join(", ")}`);
});

test("redis results entry loads ioredis", () => {
  // Guards the scan above: it must see the import where it exists.
  const packages = runtimePackages(path.join(sourceRoot, "results/backends/redis.ts"));
  assert.ok(packages.has("ioredis"));
});
