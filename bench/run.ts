/**
 * `npm run bench`: measures melodramatiq's throughput, memory and
 * send-to-start latency on the stub, Redis and RabbitMQ brokers, and BullMQ
 * on the same Redis for comparison, then prints the tables. Settings come
 * from environment variables (see config.ts and docs/benchmarks.md).
 */

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";

import { redactUrl } from "../src/logger.js";
import { readConfig, type BenchConfig } from "./config.js";
import { integer, latencyTable, milliseconds, ratio, table, throughputTable, actorLabel } from "./report.js";
import { runLatency, runThroughput, type LatencyResult, type LatencyShape, type ThroughputResult, type ThroughputShape } from "./scenarios.js";
import { rabbitmqVersion, redisVersion } from "./servers.js";
import { median } from "./stats.js";

interface Comparison {
  readonly concurrency: number;
  readonly actor: ThroughputShape["actor"];
  readonly melodramatiq: ThroughputResult;
  readonly bullmq: ThroughputResult;
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

async function describeMachine(config: BenchConfig): Promise<Record<string, string>> {
  const require = createRequire(import.meta.url);
  const bullmqVersion = (require("bullmq/package.json") as { version: string }).version;
  const machine: Record<string, string> = {
    cpus: `${os.availableParallelism()} × ${os.cpus()[0]?.model.trim() ?? "unknown"}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    bullmq: bullmqVersion,
  };
  if (config.brokers.includes("redis") || config.bullmq) {
    machine["redis"] = await redisVersion(config.redisUrl);
  }
  if (config.brokers.includes("rabbitmq")) {
    machine["rabbitmq"] = await rabbitmqVersion(config.rabbitmqUrl);
  }
  return machine;
}

/** Runs a throughput shape `repeat` times and keeps the run with the median drain rate. */
async function measureThroughput(config: BenchConfig, shape: ThroughputShape): Promise<ThroughputResult> {
  const runs: ThroughputResult[] = [];
  for (let run = 0; run < config.repeat; run += 1) {
    runs.push(await runThroughput(config, shape));
  }

  const middle = median(runs.map((result) => result.drainRate));
  const chosen = runs.find((result) => result.drainRate === middle) ?? runs[0];
  if (chosen === undefined) {
    throw new Error("No throughput run finished.");
  }

  const { library, broker, processes, actor, concurrency } = shape;
  log(
    `  ${library} ${broker} ×${processes} ${actorLabel(actor)} c${concurrency}: ` +
      `enqueue ${integer(chosen.enqueueRate)}/s, drain ${integer(chosen.drainRate)}/s, worker peak RSS ${integer(chosen.drainPeakRssMiB)} MiB`,
  );
  return chosen;
}

async function measureLatency(config: BenchConfig, shape: LatencyShape): Promise<LatencyResult> {
  const result = await runLatency(config, shape);
  log(`  ${shape.library} ${shape.broker} latency at ${shape.rate}/s: p50 ${milliseconds(result.p50)} ms, p99 ${milliseconds(result.p99)} ms`);
  return result;
}

function throughputShape(config: BenchConfig, shape: Omit<ThroughputShape, "messages">): ThroughputShape {
  return { ...shape, messages: shape.actor === "io" ? config.ioMessages : config.messages };
}

async function main(): Promise<void> {
  const config = readConfig();
  const startedAt = Date.now();
  const machine = await describeMachine(config);
  log(`Machine: ${Object.entries(machine).map(([key, value]) => `${key} ${value}`).join(", ")}`);

  log("Throughput (enqueue, then drain with fresh worker processes):");
  const throughput: ThroughputResult[] = [];
  for (const broker of config.brokers) {
    for (const processes of config.processes) {
      for (const actor of ["noop", "io"] as const) {
        throughput.push(await measureThroughput(config, throughputShape(config, { library: "melodramatiq", broker, processes, actor, concurrency: config.concurrency })));
      }
    }
  }

  log("Send-to-start latency on an idle worker:");
  const latency: LatencyResult[] = [];
  for (const broker of config.brokers) {
    latency.push(await measureLatency(config, { library: "melodramatiq", broker, rate: config.latencyRate, seconds: config.latencySeconds, concurrency: config.concurrency }));
  }

  const comparisons: Comparison[] = [];
  const bullmqLatency: LatencyResult[] = [];
  if (config.bullmq) {
    log("BullMQ on the same Redis, one worker process:");
    for (const concurrency of config.compareConcurrency) {
      for (const actor of ["noop", "io"] as const) {
        const own =
          throughput.find(({ shape }) => shape.broker === "redis" && shape.processes === 1 && shape.actor === actor && shape.concurrency === concurrency) ??
          (await measureThroughput(config, throughputShape(config, { library: "melodramatiq", broker: "redis", processes: 1, actor, concurrency })));
        const bullmq = await measureThroughput(config, throughputShape(config, { library: "bullmq", broker: "redis", processes: 1, actor, concurrency }));
        comparisons.push({ concurrency, actor, melodramatiq: own, bullmq });
      }
    }
    bullmqLatency.push(await measureLatency(config, { library: "bullmq", broker: "redis", rate: config.latencyRate, seconds: config.latencySeconds, concurrency: config.concurrency }));
  }

  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(0);
  const sections = [
    `Machine: ${Object.entries(machine).map(([key, value]) => `${key} ${value}`).join("; ")}`,
    `Throughput, melodramatiq (${config.messages} no-op / ${config.ioMessages} 1 ms messages per run, send window ${config.sendWindow} per producer):\n\n${throughputTable(throughput)}`,
    `Send-to-start latency on an idle worker (${config.latencyRate} msg/s for ${config.latencySeconds} s, producer in its own process except for the stub):\n\n${latencyTable([...latency, ...bullmqLatency])}`,
  ];
  if (comparisons.length > 0) {
    sections.push(`melodramatiq RedisBroker / BullMQ, one worker process, same Redis:\n\n${comparisonTable(comparisons)}`);
  }
  sections.push(`Targets:\n\n${targetTable(throughput, latency, comparisons)}`);
  sections.push(`Total time: ${elapsed} s`);
  process.stdout.write(`\n${sections.join("\n\n")}\n`);

  if (config.jsonPath !== undefined) {
    // The URLs may contain passwords.
    const settings = { ...config, rabbitmqUrl: redactUrl(config.rabbitmqUrl), redisUrl: redactUrl(config.redisUrl) };
    writeFileSync(config.jsonPath, `${JSON.stringify({ machine, config: settings, throughput, latency, bullmqLatency, comparisons }, null, 2)}\n`);
    log(`Wrote ${config.jsonPath}.`);
  }
}

function comparisonTable(comparisons: readonly Comparison[]): string {
  return table(
    [
      "actor",
      "concurrency",
      "enqueue msg/s",
      "BullMQ enqueue msg/s",
      "ratio",
      "drain msg/s",
      "BullMQ drain msg/s",
      "ratio",
      "worker CPU µs/msg",
      "BullMQ worker CPU µs/msg",
      "worker RSS MiB",
      "BullMQ worker RSS MiB",
    ],
    comparisons.map(({ actor, concurrency, melodramatiq, bullmq }) => [
      actorLabel(actor),
      String(concurrency),
      integer(melodramatiq.enqueueRate),
      integer(bullmq.enqueueRate),
      ratio(melodramatiq.enqueueRate / bullmq.enqueueRate),
      integer(melodramatiq.drainRate),
      integer(bullmq.drainRate),
      ratio(melodramatiq.drainRate / bullmq.drainRate),
      integer(melodramatiq.drainCpuMicros),
      integer(bullmq.drainCpuMicros),
      integer(melodramatiq.drainPeakRssMiB),
      integer(bullmq.drainPeakRssMiB),
    ]),
  );
}

/** The goals this benchmark was written to check, each against the shape it names. */
function targetTable(throughput: readonly ThroughputResult[], latency: readonly LatencyResult[], comparisons: readonly Comparison[]): string {
  const drain = (broker: string): ThroughputResult | undefined =>
    throughput.find(({ shape }) => shape.broker === broker && shape.processes === 1 && shape.actor === "noop" && shape.concurrency === 8);
  const p99 = (broker: string): number | undefined => latency.find(({ shape }) => shape.broker === broker)?.p99;
  const bullmq = comparisons.find(({ actor, concurrency }) => actor === "noop" && concurrency === 8);
  // The stub is left out, because its worker process also keeps the whole queue in memory.
  const maxRss = (broker: string): number =>
    Math.max(
      ...throughput.filter(({ shape }) => shape.broker === broker).map((result) => result.drainPeakRssMiB),
      ...latency.filter(({ shape }) => shape.broker === broker && shape.library === "melodramatiq").map((result) => result.workerPeakRssMiB),
    );

  const rows: string[][] = [];
  const add = (goal: string, measured: number | undefined, text: (value: number) => string, met: (value: number) => boolean): void => {
    if (measured !== undefined && Number.isFinite(measured)) {
      rows.push([goal, text(measured), met(measured) ? "met" : "not met"]);
    }
  };

  add("RabbitMQ drain ≥ 14000 msg/s (no-op, 1 process, concurrency 8)", drain("rabbitmq")?.drainRate, integer, (value) => value >= 14_000);
  add("Redis drain ≥ BullMQ's (no-op, 1 process, concurrency 8)", bullmq === undefined ? undefined : bullmq.melodramatiq.drainRate / bullmq.bullmq.drainRate, ratio, (value) => value >= 1);
  add("RabbitMQ send-to-start p99 < 5 ms", p99("rabbitmq"), milliseconds, (value) => value < 5);
  add("Redis send-to-start p99 < 20 ms", p99("redis"), milliseconds, (value) => value < 20);
  add("Peak RSS per RabbitMQ worker process < 60 MiB (concurrency 8)", maxRss("rabbitmq"), integer, (value) => value < 60);
  add("Peak RSS per Redis worker process < 60 MiB (concurrency 8)", maxRss("redis"), integer, (value) => value < 60);
  return table(["target", "measured", "status"], rows);
}

main().catch((error: unknown) => {
  process.stderr.write(`Benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
