/**
 * Resolution of a package specifier (`my-app`, `@acme/jobs/worker`) from a
 * base directory, the way `import` would resolve it from a file in that
 * directory: the nearest `node_modules/<name>` upwards, then the package's
 * `exports` with the conditions "node", "import" and "default", else its
 * `main` or the file named by the subpath.
 *
 * Node's own resolver cannot do this here: `import()` resolves from the CLI's
 * own location, `import.meta.resolve()` takes a parent only behind a flag in
 * Node 20, and `require.resolve()` applies the "require" condition, which
 * ESM-only packages do not export.
 */

import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";

/** A package specifier that names an installed package whose files do not provide the requested module. */
export class PackageResolutionError extends Error {
  override readonly name = "PackageResolutionError";
}

const exportConditions = new Set(["node", "import", "default"]);

/** File extensions tried after a path without one, in this order. */
export const MODULE_EXTENSIONS = [".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"] as const;

/**
 * Returns the absolute path of the module `specifier` names, found from
 * `baseDir`, or undefined when no such package is installed. Throws
 * PackageResolutionError when the package exists but does not provide the
 * subpath.
 */
export function resolvePackage(specifier: string, baseDir: string): string | undefined {
  const parts = splitPackageSpecifier(specifier);
  if (parts === undefined) {
    return undefined;
  }

  const packageDir = findPackageDir(parts.name, resolve(baseDir));
  if (packageDir === undefined) {
    return undefined;
  }

  const manifest = readManifest(join(packageDir, "package.json"));
  if (manifest.exports !== undefined && manifest.exports !== null) {
    return resolveExportedFile(packageDir, manifest.exports, parts.subpath, specifier);
  }

  let entry = parts.subpath;
  if (entry === ".") {
    entry = typeof manifest.main === "string" ? manifest.main : "index.js";
  }
  const file = findModuleFile(join(packageDir, entry));
  if (file === undefined) {
    throw new PackageResolutionError(`Package ${JSON.stringify(parts.name)} in ${packageDir} has no file for ${JSON.stringify(specifier)}.`);
  }
  return file;
}

/**
 * Returns `path` if it is a file. Otherwise returns the first existing file
 * among `path` plus each of MODULE_EXTENSIONS, then the index file of the
 * directory `path`, or undefined when none exists.
 */
export function findModuleFile(path: string): string | undefined {
  if (isFile(path)) {
    return path;
  }

  for (const extension of MODULE_EXTENSIONS) {
    if (isFile(path + extension)) {
      return path + extension;
    }
  }

  if (isDirectory(path)) {
    for (const extension of MODULE_EXTENSIONS) {
      const index = join(path, `index${extension}`);
      if (isFile(index)) {
        return index;
      }
    }
  }

  return undefined;
}

function splitPackageSpecifier(specifier: string): { name: string; subpath: string } | undefined {
  const segments = specifier.split("/");
  const nameLength = specifier.startsWith("@") ? 2 : 1;
  if (segments.length < nameLength || segments.slice(0, nameLength).some((segment) => segment === "" || segment === "." || segment === "..")) {
    return undefined;
  }

  const name = segments.slice(0, nameLength).join("/");
  const rest = segments.slice(nameLength);
  return { name, subpath: rest.length === 0 ? "." : `./${rest.join("/")}` };
}

function findPackageDir(name: string, baseDir: string): string | undefined {
  for (let dir = baseDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (isFile(join(candidate, "package.json"))) {
      return candidate;
    }
    if (dirname(dir) === dir) {
      return undefined;
    }
  }
}

interface PackageManifest {
  readonly main?: unknown;
  readonly exports?: unknown;
}

function readManifest(path: string): PackageManifest {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as PackageManifest;
  } catch (error) {
    throw new PackageResolutionError(`Failed to read ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function resolveExportedFile(packageDir: string, exports: unknown, subpath: string, specifier: string): string {
  const target = resolveExportsTarget(exports, subpath);
  if (target === undefined) {
    throw new PackageResolutionError(
      `Package ${JSON.stringify(specifier)} does not export ${JSON.stringify(subpath)} for import; ` +
        `see the "exports" field of ${join(packageDir, "package.json")}.`,
    );
  }

  const file = resolve(packageDir, target);
  if (!file.startsWith(packageDir + sep) || !isFile(file)) {
    throw new PackageResolutionError(`Package ${JSON.stringify(specifier)} exports ${JSON.stringify(subpath)} as ${target}, but ${file} is not a file.`);
  }
  return file;
}

/** Returns the relative target (`./dist/index.js`) that `exports` maps `subpath` to, or undefined. */
function resolveExportsTarget(exports: unknown, subpath: string): string | undefined {
  const map = isSubpathMap(exports) ? exports : { ".": exports };
  if (Object.hasOwn(map, subpath) && !subpath.includes("*")) {
    return resolveTarget(map[subpath], undefined);
  }

  // Of the patterns that match, Node uses the one with the longest prefix before "*".
  let best: { key: string; match: string } | undefined;
  for (const key of Object.keys(map)) {
    const star = key.indexOf("*");
    if (star < 0) {
      continue;
    }

    const prefix = key.slice(0, star);
    const suffix = key.slice(star + 1);
    const matches = subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length;
    if (matches && (best === undefined || prefix.length > best.key.indexOf("*"))) {
      best = { key, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
    }
  }

  return best === undefined ? undefined : resolveTarget(map[best.key], best.match);
}

function isSubpathMap(exports: unknown): exports is Record<string, unknown> {
  if (typeof exports !== "object" || exports === null || Array.isArray(exports)) {
    return false;
  }
  return Object.keys(exports).some((key) => key.startsWith("."));
}

function resolveTarget(target: unknown, match: string | undefined): string | undefined {
  if (typeof target === "string") {
    if (!target.startsWith("./")) {
      return undefined;
    }
    return match === undefined ? target : target.replaceAll("*", match);
  }

  if (Array.isArray(target)) {
    for (const item of target) {
      const resolved = resolveTarget(item, match);
      if (resolved !== undefined) {
        return resolved;
      }
    }
    return undefined;
  }

  if (typeof target === "object" && target !== null) {
    for (const [condition, value] of Object.entries(target)) {
      if (!exportConditions.has(condition)) {
        continue;
      }
      const resolved = resolveTarget(value, match);
      if (resolved !== undefined) {
        return resolved;
      }
    }
  }

  return undefined;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
