/**
 * Loading of TypeScript modules through tsx (https://tsx.is). The CLI
 * registers tsx's ESM and CommonJS hooks at run time, in each worker
 * process, before it imports the first TypeScript module.
 */

import { extname } from "node:path";
import { pathToFileURL } from "node:url";

import { resolvePackage } from "./package-resolution.js";

/** File URLs of tsx's register APIs. */
export interface TsxApi {
  readonly esmUrl: string;
  readonly cjsUrl: string;
}

const typeScriptExtensions = new Set([".ts", ".mts", ".cts"]);

/** Reports whether `path` is a TypeScript source file, which Node 20 cannot import without a loader. */
export function isTypeScriptFile(path: string): boolean {
  return typeScriptExtensions.has(extname(path).toLowerCase());
}

/**
 * Reports whether the CLI itself runs from its TypeScript sources. Then a
 * loader for `.ts` files (e.g. `node --import tsx`) is already active, and
 * worker processes inherit it through `execArgv`.
 */
export function cliRunsFromTypeScript(): boolean {
  return isTypeScriptFile(new URL(import.meta.url).pathname);
}

/**
 * Returns the file URLs of tsx's register APIs, resolved first from
 * melodramatiq's own files, then from each of `baseDirs` (the app's
 * directories). Returns undefined when tsx is not installed.
 */
export function findTsx(baseDirs: readonly string[]): TsxApi | undefined {
  try {
    return { esmUrl: import.meta.resolve("tsx/esm/api"), cjsUrl: import.meta.resolve("tsx/cjs/api") };
  } catch {
    // Not installed next to melodramatiq; the app may have it.
  }

  for (const base of baseDirs) {
    try {
      const esm = resolvePackage("tsx/esm/api", base);
      const cjs = resolvePackage("tsx/cjs/api", base);
      if (esm !== undefined && cjs !== undefined) {
        return { esmUrl: pathToFileURL(esm).href, cjsUrl: pathToFileURL(cjs).href };
      }
    } catch {
      // An incomplete or old tsx here: try the next directory.
    }
  }

  return undefined;
}

/**
 * Registers tsx's hooks in this process. Both are needed: with only the ESM
 * hooks (tsx 4.23, Node 20), a `.ts` file in a package without
 * `"type": "module"` fails to load.
 */
export async function registerTsx(api: TsxApi): Promise<void> {
  for (const url of [api.esmUrl, api.cjsUrl]) {
    const module = (await import(url)) as { register?: unknown };
    if (typeof module.register !== "function") {
      throw new Error(`${url} has no register() function; upgrade tsx (4.23 is known to work).`);
    }
    (module.register as () => unknown)();
  }
}
