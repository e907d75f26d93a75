/** Runs tasks of a lazy broker on a Worker, for the tests against the real RabbitMQ and Redis. */

import { setTimeout as sleep } from "node:timers/promises";

import type { Broker } from "../../src/broker.js";
import { Worker } from "../../src/worker/worker.js";
import type { LogCapture } from "../helpers/logs.js";

export interface WorkerRun {
  readonly queueName: string;
  readonly concurrency: number;
  /** Sends the messages, once the worker has started. */
  readonly send: () => Promise<unknown>;
  /** Reports whether every task has run. */
  readonly done: () => boolean;
  /** What `done` waits for, for the timeout message. */
  readonly label: string;
  /** Restored once the broker is closed, so the capture includes the shutdown. */
  readonly logs: LogCapture;
}

const TIMEOUT = 10_000;

/**
 * Starts a Worker on `broker`, sends, waits until the tasks ran and the
 * queue is joined, then stops the worker and closes the broker, whatever
 * happened.
 */
export async function runOnWorker(broker: Broker, run: WorkerRun): Promise<void> {
  const worker = new Worker(broker, { concurrency: run.concurrency, shutdownTimeout: 5000, queues: [run.queueName] });
  try {
    await worker.start();
    await run.send();
    await waitFor(run.done, run.label);
    await broker.join(run.queueName, { timeout: TIMEOUT });
  } finally {
    await worker.stop();
    await broker.close();
    run.logs.restore();
  }
}

/** Resolves when `condition` holds, polling every 20 ms; rejects with `label` after TIMEOUT ms. */
async function waitFor(condition: () => boolean, label: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${TIMEOUT} ms waiting for ${label}.`);
    }
    await sleep(20);
  }
}
