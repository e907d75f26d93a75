/**
 * The main process's side of the Prometheus metrics. A worker process whose
 * broker has the Prometheus middleware sends the exposition address over
 * IPC once it is ready. The first such message starts the exposition server
 * at that address. Each scrape then gathers a snapshot from every worker
 * process that sent one, and the server returns their merge.
 *
 * The server outlives reloads: the new worker processes announce
 * themselves again, and scrapes reach whichever processes are running.
 */

import type { ChildProcess } from "node:child_process";

import { getLogger } from "../logger.js";
import { gatherFromWorkerProcesses, isMetricsEndpointMessage, startExpositionServer, type ExpositionServer } from "../metrics/index.js";

const logger = getLogger("melodramatiq.MainProcess");

/** Serves the merged metrics of the worker processes that have a Prometheus middleware. */
export class WorkerMetricsServer {
  private readonly announced = new Set<ChildProcess>();
  private server: Promise<ExpositionServer | undefined> | undefined;
  private address: { readonly host: string; readonly port: number } | undefined;
  private closed = false;

  /** Handles an IPC message from a worker process; messages other than an endpoint announcement are ignored. */
  onMessage(child: ChildProcess, message: unknown): void {
    if (!isMetricsEndpointMessage(message) || this.closed) {
      return;
    }

    this.announced.add(child);
    const { host, port } = message;
    if (this.address === undefined) {
      this.address = { host, port };
      this.server = this.start(host, port);
    } else if (this.address.host !== host || this.address.port !== port) {
      logger.warn(
        { pid: child.pid, host, port },
        `Worker process ${child.pid ?? "unknown"} asks for the metrics server on ${host}:${port}, but it runs on ` +
          `${this.address.host}:${this.address.port}; restart the command to move it.`,
      );
    }
  }

  /** Stops asking an exited worker process for its metrics. */
  onExit(child: ChildProcess): void {
    this.announced.delete(child);
  }

  /** Stops the exposition server, if it runs. */
  async close(): Promise<void> {
    this.closed = true;
    const server = await this.server;
    await server?.close();
  }

  private async start(host: string, port: number): Promise<ExpositionServer | undefined> {
    try {
      return await startExpositionServer({
        host,
        port,
        gather: () => gatherFromWorkerProcesses(this.announced),
      });
    } catch (error) {
      // The workers keep running: a metrics address that cannot be bound is
      // no reason to stop processing messages.
      logger.error({ err: error, host, port }, `Failed to start the Prometheus exposition server on ${host}:${port}; the worker processes run without it.`);
      return undefined;
    }
  }
}
