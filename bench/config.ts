/**
 * Benchmark settings, read from environment variables so that
 * `npm run bench` needs no arguments. Every count has a default sized to
 * keep the whole run at a few minutes on a 2-core machine.
 */

import type { BrokerKind } from "./protocol.js";

export interface BenchConfig {
  /** `RABBITMQ_URL`, as in the tests. */
  readonly rabbitmqUrl: string;
  /** `REDIS_URL`, as in the tests. */
  readonly redisUrl: string;
  /** `BENCH_BROKERS`: brokers to measure, comma-separated. @defaultValue "stub,redis,rabbitmq" */
  readonly brokers: readonly BrokerKind[];
  /** `BENCH_PROCESSES`: worker (and producer) process counts. @defaultValue "1,2" */
  readonly processes: readonly number[];
  /** `BENCH_MESSAGES`: messages per run with the no-op actor. @defaultValue 20000 */
  readonly messages: number;
  /** `BENCH_IO_MESSAGES`: messages per run with the 1 ms actor. @defaultValue 10000 */
  readonly ioMessages: number;
  /** `BENCH_CONCURRENCY`: tasks per worker process in the broker matrix. @defaultValue 8 */
  readonly concurrency: number;
  /** `BENCH_SEND_WINDOW`: sends each producer process keeps in flight. @defaultValue 100 */
  readonly sendWindow: number;
  /** `BENCH_REPEAT`: runs of each throughput shape; the table shows the median rate. @defaultValue 1 */
  readonly repeat: number;
  /** `BENCH_LATENCY_RATE`: messages per second in the latency runs. @defaultValue 500 */
  readonly latencyRate: number;
  /** `BENCH_LATENCY_SECONDS`: length of each latency run. @defaultValue 5 */
  readonly latencySeconds: number;
  /** `BENCH_LATENCY_WARM_UP`: untimed messages sent before each latency run. @defaultValue 100 */
  readonly latencyWarmUp: number;
  /** `BENCH_IDLE_MS`: how long a worker sits idle after the warm-up, before the timed sends. @defaultValue 1000 */
  readonly idleMs: number;
  /** `BENCH_BULLMQ`: "0" skips the BullMQ comparison. @defaultValue "1" */
  readonly bullmq: boolean;
  /** `BENCH_COMPARE_CONCURRENCY`: worker concurrencies of the BullMQ comparison. @defaultValue "8,50" */
  readonly compareConcurrency: readonly number[];
  /** `BENCH_PHASE_TIMEOUT`: milliseconds one phase may take before the run fails. @defaultValue 120000 */
  readonly phaseTimeout: number;
  /** `BENCH_JSON`: file to write every measurement to, as JSON. @defaultValue none */
  readonly jsonPath: string | undefined;
}

const BROKER_KINDS: readonly BrokerKind[] = ["stub", "redis", "rabbitmq"];

export function readConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  return {
    rabbitmqUrl: env["RABBITMQ_URL"] ?? "amqp://guest:guest@127.0.0.1:5672",
    redisUrl: env["REDIS_URL"] ?? "redis://127.0.0.1:6379/0",
    brokers: readList(env, "BENCH_BROKERS", "stub,redis,rabbitmq").map(toBrokerKind),
    processes: readList(env, "BENCH_PROCESSES", "1,2").map((text) => toInteger("BENCH_PROCESSES", text, 1)),
    messages: readInteger(env, "BENCH_MESSAGES", 20_000, 1),
    ioMessages: readInteger(env, "BENCH_IO_MESSAGES", 10_000, 1),
    concurrency: readInteger(env, "BENCH_CONCURRENCY", 8, 1),
    sendWindow: readInteger(env, "BENCH_SEND_WINDOW", 100, 1),
    repeat: readInteger(env, "BENCH_REPEAT", 1, 1),
    latencyRate: readInteger(env, "BENCH_LATENCY_RATE", 500, 1),
    latencySeconds: readInteger(env, "BENCH_LATENCY_SECONDS", 5, 1),
    latencyWarmUp: readInteger(env, "BENCH_LATENCY_WARM_UP", 100, 0),
    idleMs: readInteger(env, "BENCH_IDLE_MS", 1000, 0),
    bullmq: (env["BENCH_BULLMQ"] ?? "1") !== "0",
    compareConcurrency: readList(env, "BENCH_COMPARE_CONCURRENCY", "8,50").map((text) => toInteger("BENCH_COMPARE_CONCURRENCY", text, 1)),
    phaseTimeout: readInteger(env, "BENCH_PHASE_TIMEOUT", 120_000, 1000),
    jsonPath: env["BENCH_JSON"] === "" ? undefined : env["BENCH_JSON"],
  };
}

function readList(env: NodeJS.ProcessEnv, name: string, fallback: string): string[] {
  const items = (env[name] ?? fallback)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (items.length === 0) {
    throw new Error(`Invalid ${name}=${JSON.stringify(env[name])}: list at least one value, e.g. ${JSON.stringify(fallback)}.`);
  }
  return items;
}

function readInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const text = env[name];
  return text === undefined || text === "" ? fallback : toInteger(name, text, min);
}

function toInteger(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`Invalid ${name}=${JSON.stringify(text)}: it must be a whole number of at least ${min}.`);
  }
  return value;
}

function toBrokerKind(text: string): BrokerKind {
  const kind = BROKER_KINDS.find((candidate) => candidate === text);
  if (kind === undefined) {
    throw new Error(`Invalid BENCH_BROKERS entry ${JSON.stringify(text)}: use ${BROKER_KINDS.join(", ")}.`);
  }
  return kind;
}
