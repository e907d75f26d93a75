/**
 * Metrics over the IPC channel between the main process of the
 * `melodramatiq` command and its worker processes.
 *
 * Protocol, three JSON messages:
 * 1. worker → main, once after boot: `{ type: "melodramatiq:metrics-endpoint", host, port }`
 *    reports that this worker process has a Prometheus middleware, and the
 *    address the exposition server should listen on;
 * 2. main → worker, on each scrape: `{ type: "melodramatiq:metrics-request", requestId }`;
 * 3. worker → main: `{ type: "melodramatiq:metrics-response", requestId, metrics }`
 *    with the worker's snapshot, or `{ …, error }` with a message.
 *
 * Worker side: `serveMetricsToMainProcess(findMetricsProvider(broker))`. Main side: start
 * `startExpositionServer({ host, port, gather })` on the first endpoint
 * message, with `gather` calling `gatherFromWorkerProcesses(children)`.
 */

import type { ChildProcess } from "node:child_process";

import type { Broker } from "../broker.js";
import { getLogger } from "../logger.js";
import { isMetricsSnapshot, type MetricsSnapshot } from "./aggregate.js";

export const METRICS_ENDPOINT_TYPE = "melodramatiq:metrics-endpoint";
export const METRICS_REQUEST_TYPE = "melodramatiq:metrics-request";
export const METRICS_RESPONSE_TYPE = "melodramatiq:metrics-response";

/** Milliseconds the main process waits for a worker process's snapshot. */
export const DEFAULT_GATHER_TIMEOUT = 5000;

/** Sent by a worker process with a Prometheus middleware: where to serve the merged metrics. */
export interface MetricsEndpointMessage {
  readonly type: typeof METRICS_ENDPOINT_TYPE;
  readonly host: string;
  readonly port: number;
}

/** Sent by the main process to ask a worker process for its snapshot. */
export interface MetricsRequestMessage {
  readonly type: typeof METRICS_REQUEST_TYPE;
  readonly requestId: number;
}

/** A worker process's response to a MetricsRequestMessage: `metrics` on success, `error` otherwise. */
export interface MetricsResponseMessage {
  readonly type: typeof METRICS_RESPONSE_TYPE;
  readonly requestId: number;
  readonly metrics?: MetricsSnapshot;
  readonly error?: string;
}

/** Source of a worker process's metrics; the Prometheus middleware is one. */
export interface MetricsProvider {
  readonly host: string;
  readonly port: number;
  collectForAggregation(): Promise<MetricsSnapshot>;
}

/** The worker process's side of the IPC channel; `process` fits. */
export type MainProcessChannel = Pick<NodeJS.Process, "on" | "off" | "send" | "connected">;

/** The main process's handle of a worker process; a forked ChildProcess fits. */
export type WorkerProcessChannel = Pick<ChildProcess, "on" | "off" | "send" | "connected" | "pid">;

const workerLogger = getLogger("melodramatiq.metrics.WorkerProcess");
const mainLogger = getLogger("melodramatiq.metrics.MainProcess");

/**
 * Returns the broker's middleware that provides metrics (the Prometheus
 * middleware), or undefined when it has none. Matches by shape rather than
 * class, so a middleware from another copy of this package is found too.
 */
export function findMetricsProvider(broker: Broker): MetricsProvider | undefined {
  for (const middleware of broker.middleware) {
    const candidate = middleware as Partial<MetricsProvider>;
    if (typeof candidate.collectForAggregation === "function" && typeof candidate.host === "string" && typeof candidate.port === "number") {
      return candidate as MetricsProvider;
    }
  }
  return undefined;
}

/** Reports whether an IPC message is a MetricsEndpointMessage. */
export function isMetricsEndpointMessage(value: unknown): value is MetricsEndpointMessage {
  const message = value as Partial<MetricsEndpointMessage> | null;
  return (
    typeof value === "object" &&
    message !== null &&
    message.type === METRICS_ENDPOINT_TYPE &&
    typeof message.host === "string" &&
    typeof message.port === "number"
  );
}

/** Reports whether an IPC message is a MetricsRequestMessage. */
export function isMetricsRequestMessage(value: unknown): value is MetricsRequestMessage {
  const message = value as Partial<MetricsRequestMessage> | null;
  return typeof value === "object" && message !== null && message.type === METRICS_REQUEST_TYPE && typeof message.requestId === "number";
}

/** Reports whether an IPC message is a MetricsResponseMessage. */
export function isMetricsResponseMessage(value: unknown): value is MetricsResponseMessage {
  const message = value as Partial<MetricsResponseMessage> | null;
  return typeof value === "object" && message !== null && message.type === METRICS_RESPONSE_TYPE && typeof message.requestId === "number";
}

/**
 * Worker side: announces `provider`'s endpoint to the main process and
 * responds to its metrics requests until the returned function is called. Does
 * nothing (and returns a no-op) when this process has no IPC channel.
 *
 * Call the returned function when the worker process stops: a `message`
 * listener keeps the IPC channel, and so the process, alive.
 */
export function serveMetricsToMainProcess(provider: MetricsProvider, channel: MainProcessChannel = process): () => void {
  if (channel.send === undefined || !channel.connected) {
    workerLogger.debug({}, "No IPC channel to a main process; metrics are not announced.");
    return () => undefined;
  }

  const send = (message: MetricsEndpointMessage | MetricsResponseMessage): void => {
    if (channel.send === undefined || !channel.connected) {
      return;
    }
    channel.send(message, undefined, {}, (error: Error | null) => {
      if (error !== null) {
        workerLogger.warn({ err: error, type: message.type }, "Failed to send metrics to the main process.");
      }
    });
  };

  const onMessage = (message: unknown): void => {
    if (!isMetricsRequestMessage(message)) {
      return;
    }

    const { requestId } = message;
    provider.collectForAggregation().then(
      (metrics) => {
        send({ type: METRICS_RESPONSE_TYPE, requestId, metrics });
      },
      (error: unknown) => {
        workerLogger.error({ err: error, requestId }, "Failed to collect the metrics the main process asked for.");
        send({ type: METRICS_RESPONSE_TYPE, requestId, error: error instanceof Error ? error.message : String(error) });
      },
    );
  };

  channel.on("message", onMessage);
  send({ type: METRICS_ENDPOINT_TYPE, host: provider.host, port: provider.port });
  return () => {
    channel.off("message", onMessage);
  };
}

let nextRequestId = 0;

/**
 * Main side: requests the snapshot of one worker process. Rejects when the
 * channel is closed, when the worker responds with an error or invalid
 * data, and after `timeout` ms without a response.
 */
export async function requestMetrics(child: WorkerProcessChannel, options: { timeout?: number } = {}): Promise<MetricsSnapshot> {
  const timeout = options.timeout ?? DEFAULT_GATHER_TIMEOUT;
  const requestId = nextRequestId++;
  const pid = child.pid ?? "unknown";

  if (!child.connected) {
    throw new Error(`Worker process ${pid} has no IPC channel open; it cannot send its metrics.`);
  }

  return new Promise<MetricsSnapshot>((resolve, reject) => {
    const finish = (error: Error | undefined, metrics?: MetricsSnapshot): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (error !== undefined) {
        reject(error);
      } else if (metrics !== undefined) {
        resolve(metrics);
      }
    };

    const onMessage = (message: unknown): void => {
      if (!isMetricsResponseMessage(message) || message.requestId !== requestId) {
        return;
      }
      if (message.error !== undefined) {
        finish(new Error(`Worker process ${pid} failed to collect its metrics: ${message.error}`));
      } else if (!isMetricsSnapshot(message.metrics)) {
        finish(new Error(`Worker process ${pid} sent metrics in an unexpected format.`));
      } else {
        finish(undefined, message.metrics);
      }
    };
    const onExit = (): void => {
      finish(new Error(`Worker process ${pid} exited before sending its metrics.`));
    };

    child.on("message", onMessage);
    child.on("exit", onExit);
    const timer = setTimeout(() => {
      finish(new Error(`Worker process ${pid} did not send its metrics within ${timeout} ms.`));
    }, timeout);

    const request: MetricsRequestMessage = { type: METRICS_REQUEST_TYPE, requestId };
    child.send(request, (error: Error | null) => {
      if (error !== null) {
        finish(new Error(`Failed to ask worker process ${pid} for its metrics: ${error.message}`, { cause: error }));
      }
    });
  });
}

/**
 * Main side: requests the snapshots of every worker process at once and
 * returns those that arrived. A worker process that fails or times out is
 * logged and left out of this scrape, so one stuck process does not hide
 * the metrics of the others.
 */
export async function gatherFromWorkerProcesses(
  children: Iterable<WorkerProcessChannel>,
  options: { timeout?: number } = {},
): Promise<MetricsSnapshot[]> {
  const results = await Promise.allSettled([...children].map((child) => requestMetrics(child, options)));

  const snapshots: MetricsSnapshot[] = [];
  for (const result of results) {
    if (result.status === "fulfilled") {
      snapshots.push(result.value);
    } else {
      mainLogger.warn({ err: result.reason }, "Leaving a worker process out of this scrape.");
    }
  }
  return snapshots;
}
