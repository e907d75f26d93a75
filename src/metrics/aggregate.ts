/**
 * Merging the metrics of several worker processes. Each process snapshots
 * its registry with prom-client's `getMetricsAsJSON()`, and the snapshots
 * travel as JSON, over the IPC channel of the `melodramatiq` command. The
 * main process merges them with prom-client's `AggregatorRegistry.aggregate()`,
 * which combines the series with equal labels by the metric's `aggregator`
 * (`sum` unless the metric sets another).
 */

import type { Registry } from "prom-client";

import { loadPeer } from "../optional-peer.js";

/** One series of a metric snapshot. Histograms carry `metricName` (`…_bucket`, `…_sum`, `…_count`). */
export interface MetricValueSnapshot {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** One metric of a registry snapshot, in the shape of prom-client's `getMetricsAsJSON()` items, without functions. */
export interface MetricSnapshot {
  name: string;
  help: string;
  /** `counter`, `gauge`, `histogram` or `summary`. */
  type: string;
  /** Combination of this metric across processes in the main process: `sum`, `first`, `min`, `max`, `average` or `omit`. */
  aggregator: string;
  values: MetricValueSnapshot[];
}

/** Every metric of one registry in one process; plain data that survives `JSON.stringify`. */
export type MetricsSnapshot = MetricSnapshot[];

/** The structure prom-client's `getMetricsAsJSON()` returns; its declared types differ from the runtime ones (`type` is a string). */
interface PromMetricJson {
  name: string;
  help: string;
  type: unknown;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[];
}

/** Returns a JSON-safe snapshot of every metric in `registry`. Runs the metrics' collect functions. */
export async function snapshotRegistry(registry: Registry): Promise<MetricsSnapshot> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as PromMetricJson[];
  return metrics.map((metric) => ({
    name: metric.name,
    help: metric.help,
    type: String(metric.type),
    aggregator: metric.aggregator,
    values: metric.values.map(toValueSnapshot),
  }));
}

function toValueSnapshot(value: PromMetricJson["values"][number]): MetricValueSnapshot {
  const labels: Record<string, string | number> = {};
  for (const [name, labelValue] of Object.entries(value.labels)) {
    if (labelValue !== undefined) {
      labels[name] = labelValue;
    }
  }

  const snapshot: MetricValueSnapshot = { value: value.value, labels };
  if (value.metricName !== undefined) {
    snapshot.metricName = value.metricName;
  }
  return snapshot;
}

const aggregators = new Set(["sum", "first", "min", "max", "average", "omit"]);

/**
 * Reports whether `value` has the shape of a MetricsSnapshot, so that data
 * from another process is checked before prom-client reads it.
 */
export function isMetricsSnapshot(value: unknown): value is MetricsSnapshot {
  return Array.isArray(value) && value.every(isMetricSnapshot);
}

function isMetricSnapshot(value: unknown): value is MetricSnapshot {
  if (typeof value !== "object" || value === null) {
    return false;
  }

  const metric = value as Partial<Record<keyof MetricSnapshot, unknown>>;
  return (
    typeof metric.name === "string" &&
    typeof metric.help === "string" &&
    typeof metric.type === "string" &&
    typeof metric.aggregator === "string" &&
    aggregators.has(metric.aggregator) &&
    Array.isArray(metric.values) &&
    metric.values.every(isValueSnapshot)
  );
}

function isValueSnapshot(value: unknown): boolean {
  if (typeof value !== "object" || value === null) {
    return false;
  }

  const series = value as { value?: unknown; labels?: unknown; metricName?: unknown };
  return (
    typeof series.value === "number" &&
    typeof series.labels === "object" &&
    series.labels !== null &&
    (series.metricName === undefined || typeof series.metricName === "string")
  );
}

/**
 * Merges the snapshots of several processes into a new prom-client
 * Registry, whose `metrics()` returns the text format. Throws a
 * ConfigurationError when prom-client is not installed.
 */
export function aggregateSnapshots(snapshots: readonly MetricsSnapshot[]): Registry {
  const client = loadPeer<typeof import("prom-client")>("prom-client", "Aggregating Prometheus metrics");
  return client.AggregatorRegistry.aggregate(snapshots.map((snapshot) => [...snapshot]));
}
