/**
 * Loading of optional peer dependencies (amqplib, prom-client). Broker modules
 * load their client library on first use, not at import, so that importing
 * `melodramatiq/web`, which imports every broker class, needs only the client
 * of the broker an app actually uses.
 */

import { createRequire } from "node:module";

import { ConfigurationError } from "./errors.js";

const requireFromHere = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

/**
 * Returns the CommonJS exports of package `name`, loading it once. Throws a
 * ConfigurationError naming the package to install when it is missing.
 */
// The caller names the module type it expects, since require() returns unknown.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function loadPeer<T>(name: string, neededBy: string): T {
  if (loaded.has(name)) {
    return loaded.get(name) as T;
  }

  let exports: unknown;
  try {
    exports = requireFromHere(name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND") {
      throw new ConfigurationError(`${neededBy} needs the package "${name}", which is not installed: run \`npm install ${name}\`.`, {
        cause: error,
      });
    }
    throw error;
  }

  loaded.set(name, exports);
  return exports as T;
}
