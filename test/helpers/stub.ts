/** A StubBroker with an in-process Worker, torn down after each test. */

import { StubBroker } from "../../src/brokers/stub/index.js";
import type { Middleware } from "../../src/middleware/middleware.js";
import { Worker, type WorkerOptions } from "../../src/worker/worker.js";

export interface StubFixture {
  broker: StubBroker;
  worker: Worker;
  stop(): Promise<void>;
}

/**
 * Creates a stub broker and a worker for it. Declare actors on `broker`,
 * then `await worker.start()`; call `stop()` in a `finally` block.
 */
export function createStubWorker(options: WorkerOptions & { middleware?: Middleware[] } = {}): StubFixture {
  const { middleware, ...workerOptions } = options;
  const broker = new StubBroker(middleware === undefined ? {} : { middleware });
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000, ...workerOptions });

  return {
    broker,
    worker,
    async stop() {
      await worker.stop();
      await broker.close();
    },
  };
}
