/**
 * The measured shapes. A throughput run enqueues a fixed number of
 * messages, then drains them with fresh worker processes. A latency run
 * sends at a steady rate to an idle worker. Each run gets its own queue
 * name or Redis namespace and deletes it afterwards.
 *
 * The stub broker lives inside one process, so its agents enqueue and
 * drain their own share of the messages: with two processes, each process
 * has its own stub broker and half of the messages.
 */

import { randomUUID } from "node:crypto";

import { AgentProcess } from "./agent-process.js";
import { sleep } from "./clock.js";
import type { BenchConfig } from "./config.js";
import type { ActorKind, AgentSpec, BrokerKind, Library, PhaseResult } from "./protocol.js";
import { deleteRabbitmqQueues, deleteRedisKeys } from "./servers.js";
import { percentile } from "./stats.js";

/** Milliseconds between checks of the agents' progress. */
const PROGRESS_POLL = 20;

export interface ThroughputShape {
  readonly library: Library;
  readonly broker: BrokerKind;
  readonly processes: number;
  readonly actor: Exclude<ActorKind, "latency">;
  readonly concurrency: number;
  readonly messages: number;
}

export interface ThroughputResult {
  readonly shape: ThroughputShape;
  /** Messages enqueued per second, over all producer processes. */
  readonly enqueueRate: number;
  /** Largest peak RSS of one producer process, MiB. */
  readonly enqueuePeakRssMiB: number;
  /** Messages processed per second, from the first worker start to the last message. */
  readonly drainRate: number;
  /** Largest peak RSS of one worker process, MiB. */
  readonly drainPeakRssMiB: number;
  /** CPU time of the producer processes per message, µs. */
  readonly enqueueCpuMicros: number;
  /** CPU time of the worker processes per message, from worker start to stop, µs. */
  readonly drainCpuMicros: number;
}

export interface LatencyShape {
  readonly library: Library;
  readonly broker: BrokerKind;
  readonly rate: number;
  readonly seconds: number;
  readonly concurrency: number;
}

export interface LatencyResult {
  readonly shape: LatencyShape;
  /** Timed messages; warm-up messages are not counted. */
  readonly sent: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly workerPeakRssMiB: number;
}

interface RunNames {
  readonly queueName: string;
  readonly namespace: string;
}

export async function runThroughput(config: BenchConfig, shape: ThroughputShape): Promise<ThroughputResult> {
  const names = uniqueNames(shape.library);
  const spec = agentSpec(config, shape.library, shape.broker, names, shape.actor, shape.concurrency);
  const agents: AgentProcess[] = [];

  try {
    const shares = split(shape.messages, shape.processes);
    const producers = await startAgents(agents, spec, "producer", shape.processes);
    const enqueued = await Promise.all(producers.map((agent, index) => agent.run({ type: "enqueue", count: shares[index] ?? 0 }, config.phaseTimeout)));

    // On a real broker the drain runs in fresh processes, so their peak RSS is the worker's alone.
    const workers = shape.broker === "stub" ? producers : await replaceAgents(agents, producers, spec, "worker");
    const drained = await drain(workers, shape.messages, config.phaseTimeout);

    return {
      shape,
      enqueueRate: rate(enqueued),
      enqueuePeakRssMiB: Math.max(...enqueued.map((result) => result.peakRssMiB)),
      drainRate: rate(drained),
      drainPeakRssMiB: Math.max(...drained.map((result) => result.peakRssMiB)),
      enqueueCpuMicros: cpuMicrosPerMessage(enqueued),
      drainCpuMicros: cpuMicrosPerMessage(drained),
    };
  } finally {
    await finish(config, shape.library, shape.broker, names, agents);
  }
}

export async function runLatency(config: BenchConfig, shape: LatencyShape): Promise<LatencyResult> {
  const names = uniqueNames(shape.library);
  const spec = agentSpec(config, shape.library, shape.broker, names, "latency", shape.concurrency);
  const agents: AgentProcess[] = [];

  try {
    const [worker] = await startAgents(agents, spec, "worker", 1);
    // The stub broker lives in the worker's process, so that process sends too.
    const [producer] = shape.broker === "stub" ? [worker] : await startAgents(agents, spec, "producer", 1);
    if (worker === undefined || producer === undefined) {
      throw new Error("No agent process started for the latency run.");
    }

    const started = worker.waitFor("started", config.phaseTimeout);
    worker.send({ type: "drain" });
    await started;

    const steady = { type: "steady", warmUp: config.latencyWarmUp, idleMs: config.idleMs, rate: shape.rate, seconds: shape.seconds } as const;
    const sent = await producer.run(steady, config.phaseTimeout + config.idleMs + shape.seconds * 1000);
    const [drained] = await drain([worker], sent.count, config.phaseTimeout, false);
    const latencies = drained?.latenciesMs ?? [];

    return {
      shape,
      sent: latencies.length,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
      workerPeakRssMiB: drained?.peakRssMiB ?? Number.NaN,
    };
  } finally {
    await finish(config, shape.library, shape.broker, names, agents);
  }
}

/** Starts `count` agents of one spec, recording them in `agents` for cleanup. */
async function startAgents(agents: AgentProcess[], spec: AgentSpec, role: string, count: number): Promise<AgentProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, (_, index) => AgentProcess.start(`${role} ${index + 1}`, spec)));
  for (const outcome of started) {
    if (outcome.status === "fulfilled") {
      agents.push(outcome.value);
    }
  }

  const failed = started.find((outcome) => outcome.status === "rejected");
  if (failed !== undefined) {
    throw failed.reason;
  }
  return started.map((outcome) => (outcome as PromiseFulfilledResult<AgentProcess>).value);
}

async function replaceAgents(agents: AgentProcess[], old: readonly AgentProcess[], spec: AgentSpec, role: string): Promise<AgentProcess[]> {
  await Promise.all(old.map(async (agent) => agent.exit()));
  return startAgents(agents, spec, role, old.length);
}

/**
 * Starts the workers (unless `start` is false: they already run), waits
 * until they have processed `total` messages between them, stops them and
 * returns their results.
 */
async function drain(workers: readonly AgentProcess[], total: number, timeout: number, start = true): Promise<PhaseResult[]> {
  if (start) {
    for (const worker of workers) {
      worker.send({ type: "drain" });
    }
  }

  const deadline = Date.now() + timeout;
  for (;;) {
    const failed = workers.find((worker) => worker.failure !== undefined);
    if (failed?.failure !== undefined) {
      throw failed.failure;
    }

    const processed = workers.reduce((sum, worker) => sum + worker.processed, 0);
    if (processed >= total) {
      break;
    }
    if (Date.now() > deadline) {
      throw new Error(`The workers processed ${processed} of ${total} messages within ${timeout} ms; raise BENCH_PHASE_TIMEOUT or lower the message counts.`);
    }
    await sleep(PROGRESS_POLL);
  }

  return Promise.all(workers.map(async (worker) => worker.run({ type: "stop" }, timeout)));
}

/** Messages per second over a set of parallel phase results. */
function rate(results: readonly PhaseResult[]): number {
  const count = results.reduce((sum, result) => sum + result.count, 0);
  const startedAt = Math.min(...results.map((result) => result.startedAt));
  const finishedAt = Math.max(...results.map((result) => result.finishedAt));
  return (count / (finishedAt - startedAt)) * 1000;
}

function cpuMicrosPerMessage(results: readonly PhaseResult[]): number {
  const count = results.reduce((sum, result) => sum + result.count, 0);
  const cpuMs = results.reduce((sum, result) => sum + result.cpuMs, 0);
  return (cpuMs / count) * 1000;
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

function uniqueNames(library: Library): RunNames {
  const suffix = randomUUID().slice(0, 8);
  return library === "bullmq"
    ? { queueName: "bench", namespace: `melobench-bullmq-${suffix}` }
    : { queueName: `bench_${suffix}`, namespace: `melobench-${suffix}` };
}

function agentSpec(config: BenchConfig, library: Library, broker: BrokerKind, names: RunNames, actor: ActorKind, concurrency: number): AgentSpec {
  return {
    library,
    broker,
    url: broker === "rabbitmq" ? config.rabbitmqUrl : config.redisUrl,
    queueName: names.queueName,
    namespace: names.namespace,
    actor,
    concurrency,
    sendWindow: config.sendWindow,
  };
}

/** Ends every agent, then deletes the run's queues or keys. */
async function finish(config: BenchConfig, library: Library, broker: BrokerKind, names: RunNames, agents: readonly AgentProcess[]): Promise<void> {
  await Promise.all(agents.map(async (agent) => agent.exit()));

  if (library === "bullmq" || broker === "redis") {
    await deleteRedisKeys(config.redisUrl, names.namespace);
  } else if (broker === "rabbitmq") {
    await deleteRabbitmqQueues(config.rabbitmqUrl, names.queueName);
  }
}
