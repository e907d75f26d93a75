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
 */

import type { Broker } from "../broker.js";
import { BrokerConnectionError } from "../errors.js";
import { ConsoleLogger, getLogger, setLogger, type Logger } from "../logger.js";
import { findMetricsProvider, serveMetricsToMainProcess } from "../metrics/ipc.js";
import { Worker } from "../worker/worker.js";
import { EXIT_CONNECTION_FAILED, EXIT_IMPORT_OR_USAGE, EXIT_KILLED, EXIT_OK } from "./exit-codes.js";
import type { ReadyMessage, ResolvedModule, WorkerProcessConfig } from "./ipc.js";
import { BrokerNotFoundError, findBroker, importModule } from "./load-broker.js";
import { registerTsx } from "./typescript-loader.js";

/** Runs a worker process until it is stopped and returns its exit code. */
export async function runWorkerProcess(config: WorkerProcessConfig): Promise<number> {
  if (!config.skipLogging) {
    setLogger(new ConsoleLogger({ level: config.verbose ? "debug" : "info" }));
  }
  const logger = getLogger(`melodramatiq.WorkerProcess(${config.index})`);
  const stopRequest = new StopRequest(logger);

  const loaded = await loadBroker(config, logger);
  if (typeof loaded === "number") {
    return loaded;
  }

  const broker = loaded;
  if (stopRequest.requested) {
    await closeBroker(broker, logger);
    return EXIT_OK;
  }

  await broker.emitAfter("afterProcessBoot");
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
    logger.error({ err: error }, "Failed to start the worker.");
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
      logger.error({ err: error }, "Failed to register tsx, which loads TypeScript modules.");
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

  logger.error({ ...fields, err: error }, `Failed to import module '${module.specifier}'.`);
  return EXIT_IMPORT_OR_USAGE;
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
    this.resolve(reason);
  }
}
