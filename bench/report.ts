/** Plain-text tables for the terminal and for docs/benchmarks.md. */

import type { LatencyResult, ThroughputResult } from "./scenarios.js";

/** Renders a Markdown table, which also reads well in a terminal. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? `${"-".repeat(width + 1)}-` : `${"-".repeat(width + 1)}:`)).join("|")}|`;
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

export function throughputTable(results: readonly ThroughputResult[]): string {
  return table(
    ["broker", "processes", "actor", "concurrency", "messages", "enqueue msg/s", "enqueue CPU µs/msg", "enqueue peak RSS MiB", "drain msg/s", "drain CPU µs/msg", "drain peak RSS MiB"],
    results.map(({ shape, enqueueRate, enqueueCpuMicros, enqueuePeakRssMiB, drainRate, drainCpuMicros, drainPeakRssMiB }) => [
      shape.library === "bullmq" ? "BullMQ (Redis)" : shape.broker,
      String(shape.processes),
      actorLabel(shape.actor),
      String(shape.concurrency),
      String(shape.messages),
      integer(enqueueRate),
      integer(enqueueCpuMicros),
      integer(enqueuePeakRssMiB),
      integer(drainRate),
      integer(drainCpuMicros),
      integer(drainPeakRssMiB),
    ]),
  );
}

export function latencyTable(results: readonly LatencyResult[]): string {
  return table(
    ["broker", "rate msg/s", "messages", "p50 ms", "p90 ms", "p99 ms", "max ms", "worker peak RSS MiB"],
    results.map(({ shape, sent, p50, p90, p99, max, workerPeakRssMiB }) => [
      shape.library === "bullmq" ? "BullMQ (Redis)" : shape.broker,
      String(shape.rate),
      String(sent),
      milliseconds(p50),
      milliseconds(p90),
      milliseconds(p99),
      milliseconds(max),
      integer(workerPeakRssMiB),
    ]),
  );
}

export function actorLabel(actor: string): string {
  return actor === "io" ? "1 ms sleep" : actor;
}

export function integer(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value)) : "n/a";
}

export function milliseconds(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : "n/a";
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a";
}
