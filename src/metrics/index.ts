/**
 * Prometheus metrics for workers: the Prometheus middleware, its exposition
 * server, and the pieces the `melodramatiq` command uses to merge the
 * metrics of several worker processes. prom-client is an optional peer
 * dependency: importing this module does not load it, constructing the
 * middleware or starting a server does.
 */

export { Prometheus, type PrometheusOptions } from "./prometheus.js";
export { DEFAULT_HOST, DEFAULT_PORT, HOST_ENV, PORT_ENV, resolveListenAddress, type ListenAddress } from "./address.js";
export {
  DURATION_BUCKETS,
  LABEL_NAMES,
  METRIC_NAMES,
  type DramatiqMetrics,
  type LabelName,
  type MessageLabels,
} from "./definitions.js";
export { type QueueDepthFunction } from "./queue-depth.js";
export {
  aggregateSnapshots,
  isMetricsSnapshot,
  snapshotRegistry,
  type MetricSnapshot,
  type MetricsSnapshot,
  type MetricValueSnapshot,
} from "./aggregate.js";
export { startExpositionServer, type ExpositionServer, type ExpositionServerOptions, type RenderedMetrics } from "./exposition.js";
export {
  DEFAULT_GATHER_TIMEOUT,
  METRICS_ENDPOINT_TYPE,
  METRICS_REQUEST_TYPE,
  METRICS_RESPONSE_TYPE,
  findMetricsProvider,
  gatherFromWorkerProcesses,
  isMetricsEndpointMessage,
  isMetricsRequestMessage,
  isMetricsResponseMessage,
  requestMetrics,
  serveMetricsToMainProcess,
  type MainProcessChannel,
  type MetricsEndpointMessage,
  type MetricsProvider,
  type MetricsRequestMessage,
  type MetricsResponseMessage,
  type WorkerProcessChannel,
} from "./ipc.js";
