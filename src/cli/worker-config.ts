/**
 * The settings every worker process receives: the resolved modules, the
 * location of tsx when TypeScript modules need it, and the flags that
 * apply inside worker processes.
 */

import { extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import type { Logger } from "../logger.js";
import type { CliOptions } from "./arguments.js";
import type { ResolvedModule, WorkerProcessConfig } from "./ipc.js";
import { ModuleNotFoundError, resolveModule } from "./resolve-module.js";
import { cliRunsFromTypeScript, findTsx, isTypeScriptFile, type TsxApi } from "./typescript-loader.js";

/**
 * Resolves the modules and finds tsx when TypeScript modules need it.
 * Returns undefined after logging the problem.
 */
export function prepareWorkerConfig(options: CliOptions, logger: Logger): Omit<WorkerProcessConfig, "index"> | undefined {
  const paths = options.paths.map((path) => resolve(path));
  let brokerModule: ResolvedModule;
  let modules: ResolvedModule[];
  try {
    brokerModule = { specifier: options.brokerModule.specifier, path: resolveModule(options.brokerModule.specifier, paths) };
    modules = options.modules.map((specifier) => ({ specifier, path: resolveModule(specifier, paths) }));
  } catch (error) {
    if (error instanceof ModuleNotFoundError) {
      logger.error({}, error.message);
      return undefined;
    }
    throw error;
  }

  const tsx = findTsxIfNeeded([brokerModule, ...modules], paths, logger);
  if (tsx === false) {
    return undefined;
  }

  return {
    brokerModule: options.brokerModule.brokerName === undefined ? brokerModule : { ...brokerModule, brokerName: options.brokerModule.brokerName },
    modules,
    threads: options.threads,
    ...(options.queues === undefined ? {} : { queues: options.queues }),
    workerShutdownTimeout: options.workerShutdownTimeout,
    verbose: options.verbose,
    skipLogging: options.skipLogging,
    ...(tsx === undefined ? {} : { tsx }),
  };
}

/**
 * Returns tsx's location when a module is TypeScript and no loader is
 * active. Returns undefined when no registration is needed, or false after
 * logging that tsx is missing.
 */
function findTsxIfNeeded(modules: readonly ResolvedModule[], paths: readonly string[], logger: Logger): TsxApi | undefined | false {
  const typeScriptModule = modules.find((module) => isTypeScriptFile(module.path));
  if (typeScriptModule === undefined || cliRunsFromTypeScript()) {
    return undefined;
  }

  const tsx = findTsx(paths);
  if (tsx === undefined) {
    logger.error(
      { module: typeScriptModule.specifier, path: typeScriptModule.path },
      `Module '${typeScriptModule.specifier}' is TypeScript, which needs tsx to load, and tsx is not installed. ` +
        "Install it in the app (npm install tsx) or compile the module to JavaScript and pass the .js file.",
    );
    return false;
  }

  logger.debug({ tsx: tsx.esmUrl }, "TypeScript modules will load through tsx.");
  return tsx;
}

/** Returns the path of worker-entry.ts next to this file, or worker-entry.js in the compiled package. */
export function workerEntryPath(): string {
  return fileURLToPath(new URL(`./worker-entry${extname(new URL(import.meta.url).pathname)}`, import.meta.url));
}
