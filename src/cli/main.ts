/**
 * The `melodramatiq` command: parses the command line, resolves the
 * modules, then runs the worker processes (see supervisor.ts for the main
 * process and worker-process.ts for each worker process).
 */

import { extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { ConsoleLogger, getLogger, setLogger, type Logger } from "../logger.js";
import { parseCommandLine, type CliOptions, type ParsedCommand } from "./arguments.js";
import { EXIT_IMPORT_OR_USAGE, EXIT_OK } from "./exit-codes.js";
import { helpText, usageText } from "./help.js";
import type { ResolvedModule, WorkerProcessConfig } from "./ipc.js";
import { ModuleNotFoundError, resolveModule } from "./resolve-module.js";
import { superviseWorkerProcesses } from "./supervisor.js";
import { cliRunsFromTypeScript, findTsx, isTypeScriptFile, type TsxApi } from "./typescript-loader.js";
import { UsageError } from "./usage-error.js";
import { packageVersion } from "./version.js";

/**
 * Runs the command with `argv` (the arguments after the script path) and
 * returns the exit code. Help and usage errors go to stdout and stderr; logs
 * go to stderr.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let command: ParsedCommand;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${usageText()}melodramatiq: error: ${error.message}\n`);
      return EXIT_IMPORT_OR_USAGE;
    }
    throw error;
  }

  if (command.kind === "help") {
    process.stdout.write(helpText());
    return EXIT_OK;
  }
  if (command.kind === "version") {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT_OK;
  }

  const { options } = command;
  setLogger(new ConsoleLogger({ level: options.verbose ? "debug" : "info" }));
  const logger = getLogger("melodramatiq.MainProcess");
  logger.info({}, `melodramatiq '${packageVersion()}' is booting up.`);

  const baseConfig = prepareWorkerConfig(options, logger);
  if (baseConfig === undefined) {
    return EXIT_IMPORT_OR_USAGE;
  }

  return superviseWorkerProcesses({
    processes: options.processes,
    entryPath: workerEntryPath(),
    configFor: (index) => ({ ...baseConfig, index }),
  });
}

/**
 * Resolves the modules and finds tsx when TypeScript modules need it.
 * Returns undefined after logging the problem.
 */
function prepareWorkerConfig(options: CliOptions, logger: Logger): Omit<WorkerProcessConfig, "index"> | undefined {
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
function workerEntryPath(): string {
  return fileURLToPath(new URL(`./worker-entry${extname(new URL(import.meta.url).pathname)}`, import.meta.url));
}
