/**
 * The `melodramatiq` command: parses the command line, sets up logging and
 * the PID file, resolves the modules, then runs the worker processes (see
 * supervisor.ts for the main process and worker-process.ts for each worker
 * process). With `--watch`, it reloads them when source files change, and
 * it serves their merged Prometheus metrics when their broker has the
 * Prometheus middleware. A SIGINT or SIGTERM before the worker processes
 * are forked makes the command exit 0 without forking them.
 */

import { statSync } from "node:fs";
import { resolve } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";

import { ConsoleLogger, getLogger, setLogger, type Logger } from "../logger.js";
import { parseCommandLine, type CliOptions, type ParsedCommand, type WatchOptions } from "./arguments.js";
import { EXIT_IMPORT_OR_USAGE, EXIT_OK, EXIT_PID_FILE } from "./exit-codes.js";
import { helpText, usageText } from "./help.js";
import { LogFile } from "./log-file.js";
import { MainProcessSignals, type SignalSource } from "./main-signals.js";
import { WorkerMetricsServer } from "./metrics-server.js";
import { PidFileError, writePidFile, type PidFile } from "./pid-file.js";
import { SourceWatcher } from "./source-watcher.js";
import { StartupSignals } from "./startup-signals.js";
import { Supervisor } from "./supervisor.js";
import { UsageError } from "./usage-error.js";
import { packageVersion } from "./version.js";
import { prepareWorkerConfig, workerEntryPath } from "./worker-config.js";

/** Changed files named in the "Reloading workers" line; the rest are counted. */
const MAX_FILES_IN_RELOAD_REASON = 5;

/**
 * Runs the command with `argv` (the arguments after the script path) and
 * returns the exit code. Help and usage errors go to stdout and stderr; logs
 * go to stderr or the `--log-file`. `signals` delivers SIGINT, SIGTERM and
 * SIGHUP; without it, main() installs process handlers for them first and
 * removes them when it returns.
 */
export async function main(argv: readonly string[], signals?: SignalSource): Promise<number> {
  if (signals === undefined) {
    const installed = MainProcessSignals.install();
    try {
      return await main(argv, installed);
    } finally {
      installed.uninstall();
    }
  }

  const startup = new StartupSignals();
  const unroute = signals.route((signal) => {
    startup.onSignal(signal);
  });
  try {
    return await runCommand(argv, { source: signals, startup });
  } finally {
    unroute();
  }
}

/** The main process's signals: their source, and the handler used outside the Supervisor's run. */
interface MainSignals {
  readonly source: SignalSource;
  readonly startup: StartupSignals;
}

async function runCommand(argv: readonly string[], signals: MainSignals): Promise<number> {
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
  let logFile: LogFile | undefined;
  if (options.logFile !== undefined) {
    try {
      logFile = LogFile.open(resolve(options.logFile));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      process.stderr.write(`melodramatiq: error: failed to open the log file ${JSON.stringify(options.logFile)}: ${reason}. Pass a --log-file in a writable directory.\n`);
      return EXIT_IMPORT_OR_USAGE;
    }
  }

  try {
    return await runWithLogging(options, logFile, signals);
  } finally {
    logFile?.close();
  }
}

async function runWithLogging(options: CliOptions, logFile: LogFile | undefined, signals: MainSignals): Promise<number> {
  if (!options.skipLogging) {
    const level = options.verbose ? "debug" : "info";
    setLogger(new ConsoleLogger(logFile === undefined ? { level } : { level, stream: logFile.stream }));
  }
  const logger = getLogger("melodramatiq.MainProcess");
  signals.startup.setLogger(logger);
  if (signals.startup.stopSignal !== undefined) {
    return EXIT_OK;
  }

  let pidFile: PidFile | undefined;
  if (options.pidFile !== undefined) {
    try {
      pidFile = writePidFile(resolve(options.pidFile));
    } catch (error) {
      if (error instanceof PidFileError) {
        logger.error({ pidFile: options.pidFile }, error.message);
        return EXIT_PID_FILE;
      }
      throw error;
    }
  }

  try {
    logger.info({}, `melodramatiq '${packageVersion()}' is booting up.`);
    return await runWorkers(options, logFile, logger, signals);
  } finally {
    pidFile?.remove();
  }
}

async function runWorkers(options: CliOptions, logFile: LogFile | undefined, logger: Logger, signals: MainSignals): Promise<number> {
  const baseConfig = prepareWorkerConfig(options, logger);
  if (baseConfig === undefined) {
    return EXIT_IMPORT_OR_USAGE;
  }

  const watchDirectory = options.watch === undefined ? undefined : checkWatchDirectory(options.watch, logger);
  if (watchDirectory === false) {
    return EXIT_IMPORT_OR_USAGE;
  }

  // Signal handlers run only when the event loop turns, and every step
  // since the command started was synchronous.
  await yieldToEventLoop();
  if (signals.startup.stopSignal !== undefined) {
    return EXIT_OK;
  }

  const metrics = new WorkerMetricsServer();
  const supervisor = new Supervisor({
    processes: options.processes,
    signals: signals.source,
    entryPath: workerEntryPath(),
    configFor: (index) => ({ ...baseConfig, index }),
    outputDescriptor: () => logFile?.descriptor,
    beforeRespawn: () => {
      reopenLogFile(logFile, logger);
    },
    onMessage: (child, message) => {
      metrics.onMessage(child, message);
    },
    onChildExit: (child) => {
      metrics.onExit(child);
    },
  });

  // run() takes over the signals at once; the first scan of the watched
  // tree happens while the worker processes start. The catch() only keeps
  // a failure during that scan from counting as unhandled; the await below
  // still throws it.
  const finished = supervisor.run();
  void finished.catch(() => undefined);
  let watcher: SourceWatcher | undefined;
  if (options.watch !== undefined && watchDirectory !== undefined) {
    try {
      watcher = await SourceWatcher.start({
        directory: watchDirectory,
        include: options.watch.include,
        exclude: options.watch.exclude,
        polling: options.watch.polling,
        onChange: (files) => {
          supervisor.reload(describeChanges(files));
        },
      });
    } catch (error) {
      logger.error({ err: error, directory: watchDirectory }, `Failed to watch ${watchDirectory}; the worker processes run without reloading on changes.`);
    }
  }

  try {
    return await finished;
  } finally {
    signals.startup.finishStartup();
    watcher?.close();
    await metrics.close();
  }
}

/** Returns the absolute path of the `--watch` directory, or false after logging that it is not a directory. */
function checkWatchDirectory(watch: WatchOptions, logger: Logger): string | false {
  const directory = resolve(watch.directory);
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch {
    // Reported below like a file.
  }

  if (!isDirectory) {
    logger.error({ directory }, `Invalid --watch ${JSON.stringify(watch.directory)}: ${directory} is not a directory. Pass the directory of the app's sources.`);
    return false;
  }
  return directory;
}

/**
 * Opens the log file again before new worker processes start, so that
 * `kill -HUP` after a log rotation moves all output to the new file.
 */
function reopenLogFile(logFile: LogFile | undefined, logger: Logger): void {
  if (logFile === undefined) {
    return;
  }

  try {
    logFile.reopen();
  } catch (error) {
    logger.error({ err: error, logFile: logFile.path }, `Failed to reopen the log file ${logFile.path}; logs keep going to the file opened before.`);
  }
}

function describeChanges(files: readonly string[]): string {
  const named = files.slice(0, MAX_FILES_IN_RELOAD_REASON).join(", ");
  const more = files.length > MAX_FILES_IN_RELOAD_REASON ? ` and ${files.length - MAX_FILES_IN_RELOAD_REASON} more` : "";
  return `changed: ${named}${more}`;
}
