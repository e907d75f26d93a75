/** Helpers to read the metrics of a Prometheus middleware in tests. */

import type { Prometheus } from "../../src/metrics/index.js";
import type { MetricsSnapshot } from "../../src/metrics/index.js";

/** Returns the sum of the series of metric `name` whose labels include `labels` (and whose series name is `metricName`, for histograms). */
export async function metricValue(
  prometheus: Prometheus,
  name: string,
  labels: Record<string, string> = {},
  metricName?: string,
): Promise<number> {
  return snapshotValue(await prometheus.collectForAggregation(), name, labels, metricName);
}

/** Like metricValue(), on a snapshot. */
export function snapshotValue(snapshot: MetricsSnapshot, name: string, labels: Record<string, string> = {}, metricName?: string): number {
  const metric = snapshot.find((candidate) => candidate.name === name);
  if (metric === undefined) {
    throw new Error(`No metric named ${name} in the snapshot.`);
  }

  return metric.values
    .filter((value) => metricName === undefined || value.metricName === metricName)
    .filter((value) => Object.entries(labels).every(([label, expected]) => String(value.labels[label]) === expected))
    .reduce((sum, value) => sum + value.value, 0);
}

/** Returns the label sets of metric `name`'s series (without `le`). */
export async function seriesLabels(prometheus: Prometheus, name: string): Promise<Record<string, string | number>[]> {
  const metric = (await prometheus.collectForAggregation()).find((candidate) => candidate.name === name);
  return (metric?.values ?? []).map((value) => value.labels);
}

/** Polls `condition` every 10 ms until it holds; throws `description` after `timeout` ms. */
export async function waitFor(condition: () => boolean | Promise<boolean>, description: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting until ${description}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
