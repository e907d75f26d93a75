/**
 * Loader for the golden vectors that Python Dramatiq 2.2 produced. They live in
 * `shared/protocol/vectors/`, next to the repository root.
 */

import { readFileSync } from "node:fs";
import path from "node:path";

/** Folder that contains the golden vector files. */
export const VECTOR_DIRECTORY = path.resolve(
  import.meta.dirname,
  "../../../shared/protocol/vectors",
);

/**
 * Returns the raw text of the vector file `name` (with or without `.json`). Use it
 * when exact big integers matter, because JSON.parse rounds them.
 */
export function loadVectorText(name: string): string {
  const fileName = name.endsWith(".json") ? name : `${name}.json`;
  return readFileSync(path.join(VECTOR_DIRECTORY, fileName), "utf8");
}

/**
 * Parses the vector file `name` (with or without `.json`) with JSON.parse, so
 * integers beyond 2^53 come back rounded. {@link loadVectorText} keeps them exact.
 */
export function loadVector(name: string): unknown {
  return JSON.parse(loadVectorText(name)) as unknown;
}
