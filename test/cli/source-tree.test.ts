import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { SourceTree } from "../../src/cli/source-tree.js";
import { ALWAYS_WATCH_EXCLUDE, compilePatterns, DEFAULT_WATCH_INCLUDE } from "../../src/cli/watch-patterns.js";

interface Fixture {
  readonly root: string;
  readonly tree: SourceTree;
  readonly added: string[];
  readonly removed: string[];
  readonly write: (path: string, text: string) => void;
}

/** Creates a directory with `files` and a SourceTree over it with the default patterns plus `exclude`. */
async function makeTree(t: TestContext, files: Record<string, string>, exclude: string[] = []): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), "melo-cli-tree-"));
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const write = (path: string, text: string): void => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  for (const [path, text] of Object.entries(files)) {
    write(path, text);
  }

  const added: string[] = [];
  const removed: string[] = [];
  const tree = new SourceTree({
    root,
    include: compilePatterns(DEFAULT_WATCH_INCLUDE),
    exclude: compilePatterns([...ALWAYS_WATCH_EXCLUDE, ...exclude]),
    onDirectoryAdded: (path) => added.push(path),
    onDirectoryRemoved: (path) => removed.push(path),
  });
  assert.deepEqual(await tree.scan("", { recursive: true, baseline: true }), [], "the first scan reports nothing");
  return { root, tree, added, removed, write };
}

test("SourceTree baseline skips excluded directories", async (t) => {
  const { tree, added } = await makeTree(
    t,
    { "app.ts": "1", "README.md": "x", "src/jobs/email.ts": "1", "node_modules/dep/index.js": "1", ".git/HEAD.json": "1", "dist/app.js": "1" },
    ["dist"],
  );

  assert.deepEqual(tree.size, { files: 2, directories: 3 });
  assert.deepEqual(added.sort(), ["", "src", "src/jobs"]);
});

test("SourceTree touch is no change", async (t) => {
  const { root, tree, write } = await makeTree(t, { "app.ts": "export const a = 1;\n" });
  const later = new Date(Date.now() + 60_000);

  utimesSync(join(root, "app.ts"), later, later);
  assert.deepEqual(await tree.scan(""), [], "new times, same content");

  write("app.ts", "export const a = 1;\n");
  assert.deepEqual(await tree.scan(""), [], "rewritten with the same content");
});

test("SourceTree content change", async (t) => {
  const { tree, write } = await makeTree(t, { "app.ts": "1", "src/jobs/email.ts": "1" });

  write("src/jobs/email.ts", "2");
  assert.deepEqual(await tree.scan(""), [], "a shallow scan of the root does not look into known subdirectories");
  assert.deepEqual(await tree.scan("src/jobs"), ["src/jobs/email.ts"]);
  assert.deepEqual(await tree.scan("src/jobs"), [], "reported once");

  write("src/jobs/email.ts", "3");
  assert.deepEqual(await tree.scan("", { recursive: true }), ["src/jobs/email.ts"]);
});

test("SourceTree new and removed files", async (t) => {
  const { root, tree, write, added, removed } = await makeTree(t, { "app.ts": "1", "old/gone.ts": "1" });

  write("new.json", "{}");
  write("fresh/deep/job.ts", "1");
  write("notes.txt", "not watched");
  rmSync(join(root, "old"), { recursive: true });

  assert.deepEqual((await tree.scan("")).sort(), ["fresh/deep/job.ts", "new.json", "old/gone.ts"]);
  assert.ok(added.includes("fresh/deep"));
  assert.deepEqual(removed, ["old"]);
});

test("SourceTree ignores dangling symlinks", async (t) => {
  const { root, tree } = await makeTree(t, { "app.ts": "1" });

  // Emacs locks a file with a symlink named .#<file> to a target that does not exist.
  symlinkSync("user@host.1234", join(root, "lock.ts"));
  assert.deepEqual(await tree.scan(""), []);
});

test("SourceTree excluded file changes", async (t) => {
  const { tree, write } = await makeTree(t, { "app.ts": "1", "generated/types.ts": "1", "src/app.test.ts": "1" }, ["generated/**", "*.test.ts"]);

  write("generated/types.ts", "2");
  write("src/app.test.ts", "2");
  write("node_modules/dep/index.js", "2");
  assert.deepEqual(await tree.scan("", { recursive: true }), []);
});
