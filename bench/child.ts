/**
 * Entry point of an agent process. The parent forks it with the AgentSpec
 * as JSON in argv[2], waits for "ready", then drives it phase by phase over
 * IPC (see protocol.ts). Any failure is reported as "failed" and ends the
 * process with exit code 1.
 */

import { enqueueWindowed, Recorder, sendSteadily, type Agent } from "./agent.js";
import { cpuMsSince, monotonicMs, peakRssMiB } from "./clock.js";
import { tuneWorkerHeap } from "../src/cli/worker-heap.js";
import type { AgentSpec, ChildMessage, ParentMessage } from "./protocol.js";

/** Milliseconds between progress reports while a worker runs. */
const PROGRESS_INTERVAL = 50;

function send(message: ChildMessage): void {
  process.send?.(message);
}

function fail(error: unknown): never {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: "failed", error: text });
  process.exit(1);
}

class Drain {
  readonly recorder = new Recorder();
  private startedAt = 0;
  private cpu = process.cpuUsage();
  private readonly progress: NodeJS.Timeout;

  constructor(private readonly agent: Agent) {
    this.progress = setInterval(() => {
      send({ type: "progress", processed: this.recorder.processed });
    }, PROGRESS_INTERVAL);
  }

  async start(): Promise<void> {
    this.cpu = process.cpuUsage();
    this.startedAt = monotonicMs();
    await this.agent.startWorker(this.recorder);
    send({ type: "started" });
  }

  async stop(): Promise<void> {
    clearInterval(this.progress);
    const cpuMs = cpuMsSince(this.cpu);
    await this.agent.stopWorker();
    const { processed, lastFinishedAt, latenciesMs } = this.recorder;
    send({
      type: "done",
      result: { startedAt: this.startedAt, finishedAt: lastFinishedAt, count: processed, peakRssMiB: peakRssMiB(), cpuMs, latenciesMs },
    });
  }
}

async function handle(agent: Agent, spec: AgentSpec, message: ParentMessage, state: { drain: Drain | undefined }): Promise<void> {
  switch (message.type) {
    case "enqueue":
      send({ type: "done", result: await enqueueWindowed(agent, message.count, spec.sendWindow) });
      return;
    case "steady":
      send({ type: "done", result: await sendSteadily(agent, message.warmUp, message.idleMs, message.rate, message.seconds) });
      return;
    case "drain":
      state.drain = new Drain(agent);
      await state.drain.start();
      return;
    case "stop":
      await state.drain?.stop();
      state.drain = undefined;
      return;
    case "exit":
      // The disconnect handler closes the agent and exits.
      process.disconnect();
      return;
  }
}

/** Loads only the library the agent drives, so that the other one's modules do not count in its RSS. */
async function createAgent(spec: AgentSpec): Promise<Agent> {
  if (spec.library === "bullmq") {
    const { BullmqAgent } = await import("./bullmq-agent.js");
    return new BullmqAgent(spec);
  }
  const { MelodramatiqAgent } = await import("./melodramatiq-agent.js");
  return MelodramatiqAgent.create(spec);
}

async function main(): Promise<void> {
  const text = process.argv[2];
  if (text === undefined || process.send === undefined) {
    throw new Error("bench/child.js is started by bench/run.js with an agent spec and an IPC channel; run `npm run bench` instead.");
  }

  const spec = JSON.parse(text) as AgentSpec;
  if (spec.library === "melodramatiq") {
    // As the CLI's worker processes do (src/cli/worker-entry.ts).
    tuneWorkerHeap();
  }
  const agent = await createAgent(spec);
  const state: { drain: Drain | undefined } = { drain: undefined };

  process.on("message", (message: ParentMessage) => {
    handle(agent, spec, message, state).catch(fail);
  });
  // An orphaned agent (the parent died) must not keep its connections open.
  process.on("disconnect", () => {
    agent.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });

  await agent.prepare();
  send({ type: "ready" });
}

main().catch(fail);
