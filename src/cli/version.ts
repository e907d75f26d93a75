/** The package version, read from package.json at run time so it never drifts from the release. */

import { readFileSync } from "node:fs";

/**
 * Returns the `version` field of melodramatiq's package.json. This file is
 * `src/cli/version.ts` in the repository and `dist/cli/version.js` when
 * installed, so package.json is two directories up in both cases.
 */
export function packageVersion(): string {
  const manifestUrl = new URL("../../package.json", import.meta.url);
  const manifest = JSON.parse(readFileSync(manifestUrl, "utf8")) as { version?: unknown };
  if (typeof manifest.version !== "string") {
    throw new Error(`${manifestUrl.pathname} has no "version" field.`);
  }
  return manifest.version;
}
