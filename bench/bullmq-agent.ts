/**
 * The agent of BullMQ, for the comparison: a Queue for adds and a Worker
 * with a processor that does what the melodramatiq actor of the same kind
 * does. Jobs are removed on completion, as melodramatiq deletes a message
 * when it acks it.
 */

import { setTimeout as delay } from "node:timers/promises";

import { Queue, Worker, type Job } from "bullmq";

import type { Agent, Recorder } from "./agent.js";
import type { AgentSpec } from "./protocol.js";

interface JobData {
  readonly value: number;
}

export class BullmqAgent implements Agent {
  private readonly queue: Queue<JobData>;
  private worker: Worker<JobData> | undefined;

  constructor(private readonly spec: AgentSpec) {
    this.queue = new Queue<JobData>(spec.queueName, {
      connection: connectionOptions(spec.url),
      prefix: spec.namespace,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });
  }

  async prepare(): Promise<void> {
    await this.queue.waitUntilReady();
  }

  sendOne(sequence: number): Promise<unknown> {
    return this.queue.add("bench", { value: sequence });
  }

  sendTimed(sentAt: number): Promise<unknown> {
    return this.queue.add("bench", { value: sentAt });
  }

  async startWorker(recorder: Recorder): Promise<void> {
    const worker = new Worker<JobData>(this.spec.queueName, processorFor(this.spec, recorder), {
      connection: connectionOptions(this.spec.url),
      prefix: this.spec.namespace,
      concurrency: this.spec.concurrency,
      autorun: false,
    });
    worker.on("error", (error) => {
      process.stderr.write(`BullMQ worker error: ${error.message}\n`);
    });
    this.worker = worker;

    await worker.waitUntilReady();
    worker.run().catch((error: unknown) => {
      process.stderr.write(`BullMQ worker stopped: ${String(error)}\n`);
    });
  }

  async stopWorker(): Promise<void> {
    await this.worker?.close();
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

function processorFor(spec: AgentSpec, recorder: Recorder): (job: Job<JobData>) => Promise<void> {
  switch (spec.actor) {
    case "noop":
      return async () => {
        recorder.finished();
      };
    case "io":
      return async () => {
        await delay(1);
        recorder.finished();
      };
    case "latency":
      return async (job) => {
        recorder.started(job.data.value);
        recorder.finished();
      };
  }
}

/** BullMQ's workers need `maxRetriesPerRequest: null` on their blocking connection. */
function connectionOptions(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}
