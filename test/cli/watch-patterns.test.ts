import assert from "node:assert/strict";
import { test } from "node:test";

import { ALWAYS_WATCH_EXCLUDE, compilePatterns, DEFAULT_WATCH_INCLUDE } from "../../src/cli/watch-patterns.js";

test("compilePatterns glob table", () => {
  const cases: [pattern: string, path: string, expected: boolean][] = [
    ["**/*.ts", "app.ts", true],
    ["**/*.ts", "src/jobs/email.ts", true],
    ["**/*.ts", "src/app.tsx", false],
    ["*.ts", "src/jobs/email.ts", true],
    ["src/*.ts", "src/app.ts", true],
    ["src/*.ts", "src/jobs/email.ts", false],
    ["src/*.ts", "lib/src/app.ts", false],
    ["./src/*.ts", "src/app.ts", true],
    ["generated/**", "generated", true],
    ["generated/**", "generated/a/b.ts", true],
    ["generated/**", "generated-2/b.ts", false],
    ["src/**/email.ts", "src/email.ts", true],
    ["src/**/email.ts", "src/a/b/email.ts", true],
    ["**.sql", "db/migrations/001.sql", true],
    ["**/*.{ts,js}", "lib/app.js", true],
    ["**/*.{ts,js}", "lib/app.json", false],
    ["file{1", "file{1", true],
    ["v?.ts", "v2.ts", true],
    ["v?.ts", "v10.ts", false],
    ["[ab].ts", "b.ts", true],
    ["[!ab].ts", "b.ts", false],
    ["[!ab].ts", "c.ts", true],
    ["a.b", "axb", false],
    ["a+b(c).ts", "a+b(c).ts", true],
    ["dist", "packages/api/dist", true],
  ];

  for (const [pattern, path, expected] of cases) {
    assert.equal(compilePatterns([pattern])(path), expected, `${pattern} against ${path}`);
  }
});

test("compilePatterns any of several", () => {
  const matches = compilePatterns(["*.sql", "docs/**"]);

  assert.equal(matches("schema.sql"), true);
  assert.equal(matches("docs/index.md"), true);
  assert.equal(matches("src/index.md"), false);
  assert.equal(compilePatterns([])("anything"), false);
});

test("default watch include", () => {
  const include = compilePatterns(DEFAULT_WATCH_INCLUDE);

  for (const path of ["app.ts", "src/a.mts", "src/a.cts", "lib/a.js", "lib/a.mjs", "lib/a.cjs", "package.json", "config/tsconfig.json"]) {
    assert.equal(include(path), true, path);
  }
  for (const path of ["README.md", "app.log", "app.ts.swp", "data.csv"]) {
    assert.equal(include(path), false, path);
  }
});

test("always watch exclude", () => {
  const exclude = compilePatterns(ALWAYS_WATCH_EXCLUDE);

  for (const path of ["node_modules", "packages/api/node_modules", ".git", "src/.#app.ts", "src/#app.ts#", "src/app.ts~", "src/.app.ts.swp", "src/4913", "src/app.ts___jb_tmp___"]) {
    assert.equal(exclude(path), true, path);
  }
  for (const path of ["src/app.ts", "src/node_modules.ts", "git/app.ts"]) {
    assert.equal(exclude(path), false, path);
  }
});
