/**
 * Resolution of MODULE arguments to files. The CLI resolves every module in
 * the main process, so a typo fails once with exit code 2 before any worker
 * process starts, and the worker processes import absolute paths.
 */

import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { findModuleFile, MODULE_EXTENSIONS, PackageResolutionError, resolvePackage } from "./package-resolution.js";

/** A MODULE argument that names no file and no installed package. */
export class ModuleNotFoundError extends Error {
  override readonly name = "ModuleNotFoundError";
}

/**
 * Returns the absolute path of the file that `specifier` names.
 *
 * - A `file:` URL or an absolute path names that file.
 * - A path starting with `./` or `../` is looked up in each of `baseDirs`.
 * - Anything else is first looked up as a file in each of `baseDirs`, then
 *   as a package in the `node_modules` directories above each of them, so
 *   `melodramatiq tasks` finds `./tasks.js` like `dramatiq tasks` finds
 *   `./tasks.py`.
 *
 * A file path may leave out its extension (MODULE_EXTENSIONS are tried in
 * order) or name a directory with an index file. Throws ModuleNotFoundError
 * naming every place it looked.
 */
export function resolveModule(specifier: string, baseDirs: readonly string[]): string {
  const bases = baseDirs.map((dir) => resolve(dir));

  if (specifier.startsWith("file:")) {
    return requireFile(specifier, [fileURLToPath(specifier)], []);
  }
  if (isAbsolute(specifier)) {
    return requireFile(specifier, [specifier], []);
  }

  const candidates = bases.map((base) => resolve(base, specifier));
  if (/^\.\.?[\\/]/.test(specifier)) {
    return requireFile(specifier, candidates, []);
  }

  for (const candidate of candidates) {
    const file = findModuleFile(candidate);
    if (file !== undefined) {
      return file;
    }
  }

  for (const base of bases) {
    const file = resolvePackageOrThrow(specifier, base);
    if (file !== undefined) {
      return file;
    }
  }

  return requireFile(specifier, candidates, bases);
}

function resolvePackageOrThrow(specifier: string, base: string): string | undefined {
  try {
    return resolvePackage(specifier, base);
  } catch (error) {
    if (error instanceof PackageResolutionError) {
      throw new ModuleNotFoundError(`Module ${JSON.stringify(specifier)} was not found: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Returns the first existing module file among `candidates`, or throws ModuleNotFoundError. */
function requireFile(specifier: string, candidates: readonly string[], packageBases: readonly string[]): string {
  for (const candidate of candidates) {
    const file = findModuleFile(candidate);
    if (file !== undefined) {
      return file;
    }
  }

  const extensions = MODULE_EXTENSIONS.join(", ");
  const files = candidates.map((candidate) => `  ${candidate} (also with ${extensions}, or as a directory with an index file)`);
  const packages = packageBases.map((base) => `  a package in node_modules of ${base} or a parent directory`);
  throw new ModuleNotFoundError(
    [
      `Module ${JSON.stringify(specifier)} was not found. Looked for:`,
      ...files,
      ...packages,
      "Pass the path of the file, e.g. ./app.js, or set the base directory with --path.",
    ].join("\n"),
  );
}
