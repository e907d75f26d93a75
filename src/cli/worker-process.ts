/**
 * The life of one worker process: load the modules, start a Worker, report
 * readiness (and the Prometheus middleware's address, if the broker has
 * one) to the main process, and stop gracefully on the first SIGTERM.
 *
 * Signals: SIGINT is ignored, because Ctrl-C in a terminal reaches every
 * process of the group and the main process already turns it into a
 * SIGTERM for each worker process. The first SIGTERM or SIGHUP starts a
 * graceful stop; a second one exits at once with code 1. A lost IPC channel
 * means the main process is gone, and also starts a graceful stop, so no
 * worker process outlives it by more than the shutdown timeout.
 *
 * A stop requested while the modules are still being imported ends the
 * process at once with code 0, without waiting for the import. No message
 * has been received yet, so none is lost or run twice, and a module whose
 * top-level await never settles cannot keep the process alive. A stop
 * requested after the import but before the worker starts closes the
 * broker without consuming. One requested while the worker starts becomes
 * a graceful stop once it has started.
 */

import type { Broker } from "../broker.js";
import { BrokerConnectionError } from "../errors.js";
import { ConsoleLogger, getLogger, setLogger, type Logger } from "../logger.js";
import { findMetricsProvider, serveMetricsToMainProcess } from "../metrics/ipc.js";
import { Worker } from "../worker/worker.js";
import { EXIT_CONNECTION_FAILED, EXIT_IMPORT_OR_USAGE, EXIT_KILLED, EXIT_OK } from "./exit-codes.js";
import type { ReadyMessage, ResolvedModule, WorkerProcessConfig } from "./ipc.js";
import { BrokerNotFoundError, findBroker, importModule } from "./load-broker.js";
import { describeNonError } from "./thrown-value.js";
import { registerTsx } from "./typescript-loader.js";

/** The outcome of loading when a stop request came first. */
const STOPPED_WHILE_LOADING = Symbol("stopped while loading");

/** Runs a worker process until it is stopped and returns its exit code. */
export async function runWorkerProcess(config: WorkerProcessConfig): Promise<number> {
  if (!config.skipLogging) {
    setLogger(new ConsoleLogger({ level: config.verbose ? "debug" : "info" }));
  }
  const logger = getLogger(`melodramatiq.WorkerProcess(${config.index})`);
  const stopRequest = new StopRequest(logger);

  // An import that loses the race goes on until worker-entry.ts calls process.exit().
  const stopped = stopRequest.promise.then((): typeof STOPPED_WHILE_LOADING => STOPPED_WHILE_LOADING);
  const loaded = await Promise.race([loadBroker(config, logger), stopped]);
  if (loaded === STOPPED_WHILE_LOADING) {
    logger.info({ reason: stopRequest.reason }, "Stop requested while importing the modules; exiting without consuming.");
    return EXIT_OK;
  }
  if (typeof loaded === "number") {
    return loaded;
  }

  const broker = loaded;
  if (!stopRequest.requested) {
    await broker.emitAfter("afterProcessBoot");
  }
  if (stopRequest.requested) {
    logger.info({ reason: stopRequest.reason }, "Stop requested before consuming; closing the broker without consuming.");
    await closeBroker(broker, logger);
    return EXIT_OK;
  }

  warnIfNothingToConsume(broker, config, logger);

  const worker = new Worker(broker, {
    concurrency: config.threads,
    shutdownTimeout: config.workerShutdownTimeout,
    ...(config.queues === undefined ? {} : { queues: config.queues }),
  });

  try {
    await worker.start();
  } catch (error) {
    await closeBroker(broker, logger);
    if (error instanceof BrokerConnectionError) {
      logger.error({ err: error }, "Failed to connect to the broker.");
      return EXIT_CONNECTION_FAILED;
    }
    logger.error({ err: error }, `Failed to start the worker${describeNonError(error)}.`);
    return EXIT_KILLED;
  }

  logger.info({}, "Worker process is ready for action.");
  reportReady(logger);
  const stopServingMetrics = serveMetrics(broker, logger);

  const reason = await stopRequest.promise;
  logger.info({ reason }, "Stopping worker process...");
  await worker.stop();
  stopServingMetrics();
  await closeBroker(broker, logger);
  return EXIT_OK;
}

/**
 * Sends the Prometheus middleware's exposition address to the main
 * process, which serves the merged metrics of all worker processes, and
 * responds to its metrics requests. Returns the function that stops the
 * responses.
 */
function serveMetrics(broker: Broker, logger: Logger): () => void {
  const provider = findMetricsProvider(broker);
  if (provider === undefined) {
    return () => undefined;
  }

  logger.debug({ host: provider.host, port: provider.port }, "The broker has the Prometheus middleware; the main process serves its metrics.");
  return serveMetricsToMainProcess(provider);
}

/** Imports the modules and returns the broker, or the exit code after logging why loading failed. */
async function loadBroker(config: WorkerProcessConfig, logger: Logger): Promise<Broker | number> {
  if (config.tsx !== undefined) {
    try {
      await registerTsx(config.tsx);
    } catch (error) {
      logger.error({ err: error }, `Failed to register tsx, which loads TypeScript modules${describeNonError(error)}.`);
      return EXIT_IMPORT_OR_USAGE;
    }
  }

  const { brokerModule } = config;
  let broker: Broker;
  try {
    const namespace = await importModule(brokerModule.path);
    broker = await findBroker(namespace, `'${brokerModule.specifier}'`, brokerModule.brokerName);
  } catch (error) {
    return reportLoadFailure(error, brokerModule, logger);
  }

  for (const module of config.modules) {
    try {
      await importModule(module.path);
    } catch (error) {
      return reportLoadFailure(error, module, logger);
    }
  }

  return broker;
}

function reportLoadFailure(error: unknown, module: ResolvedModule, logger: Logger): number {
  const fields = { module: module.specifier, path: module.path };
  if (error instanceof BrokerNotFoundError) {
    logger.error(fields, error.message);
    return EXIT_IMPORT_OR_USAGE;
  }

  if (error instanceof BrokerConnectionError) {
    logger.error({ ...fields, err: error }, `Failed to connect to the broker while loading module '${module.specifier}'.`);
    return EXIT_CONNECTION_FAILED;
  }

  logger.error({ ...fields, err: error }, `Failed to import module '${module.specifier}'${describeNonError(error)}.`);
  return EXIT_IMPORT_OR_USAGE;
}

/**
 * Warns when no actor is declared and no `--queues` is given: the worker
 * then consumes only the queues declared without an actor, often none,
 * which usually means the modules that declare the actors were not passed.
 */
function warnIfNothingToConsume(broker: Broker, config: WorkerProcessConfig, logger: Logger): void {
  if (config.queues !== undefined || broker.actors.size > 0) {
    return;
  }

  const { specifier } = config.brokerModule;
  const queues = [...broker.getDeclaredQueues()];
  const fix = `Pass the modules that declare actors after '${specifier}', or --queues.`;
  if (queues.length === 0) {
    logger.warn({ module: specifier }, `No actor is declared on the broker of module '${specifier}', so this worker process consumes nothing. ${fix}`);
  } else {
    logger.warn(
      { module: specifier, queues },
      `No actor is declared on the broker of module '${specifier}', so this worker process dead-letters every message on the queues ${queues.join(", ")}. ${fix}`,
    );
  }
}

/** Tells the main process that this worker consumes. A closed channel is logged, not thrown. */
function reportReady(logger: Logger): void {
  if (process.send === undefined || !process.connected) {
    return;
  }

  const ready: ReadyMessage = { type: "ready" };
  process.send(ready, (error: Error | null) => {
    if (error !== null) {
      logger.warn({ err: error }, "Failed to report readiness to the main process.");
    }
  });
}

async function closeBroker(broker: Broker, logger: Logger): Promise<void> {
  try {
    await broker.close();
  } catch (error) {
    logger.warn({ err: error }, "Failed to close the broker.");
  }
}

/** Resolves `promise` with the reason on the first stop request; exits on the second signal. */
class StopRequest {
  readonly promise: Promise<string>;
  requested = false;
  /** The signal, or "disconnect", that requested the stop. */
  reason: string | undefined;
  private resolve: (reason: string) => void = () => undefined;

  constructor(private readonly logger: Logger) {
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });

    process.on("SIGINT", () => {
      logger.debug({}, "Ignoring SIGINT; the main process sends SIGTERM to stop this process.");
    });
    process.on("SIGTERM", () => {
      this.onSignal("SIGTERM");
    });
    process.on("SIGHUP", () => {
      this.onSignal("SIGHUP");
    });
    process.on("disconnect", () => {
      if (!this.requested) {
        logger.error({}, "Lost the IPC channel to the main process, which has probably died; stopping.");
        this.request("disconnect");
      }
    });
  }

  private onSignal(signal: string): void {
    if (this.requested) {
      this.logger.warn({ signal }, `Received ${signal} while stopping; exiting at once.`);
      process.exit(EXIT_KILLED);
    }
    this.request(signal);
  }

  private request(reason: string): void {
    this.requested = true;
    this.reason = reason;
    this.resolve(reason);
  }
}
