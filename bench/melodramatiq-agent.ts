/** The agent of melodramatiq: a broker with the default middleware, one actor and a Worker. */

import { setTimeout as delay } from "node:timers/promises";

import { actor, ConsoleLogger, setLogger, StubBroker, Worker, type Broker, type CallableActor } from "../src/index.js";
import type { Agent, Recorder } from "./agent.js";
import type { AgentSpec } from "./protocol.js";

/** Milliseconds a stopping worker waits for running tasks; the benchmark stops only idle workers. */
const STOP_TIMEOUT = 5000;

type BenchActor = CallableActor<(value: number) => unknown>;

export class MelodramatiqAgent implements Agent {
  private readonly target: BenchActor;
  private recorder: Recorder | undefined;
  private worker: Worker | undefined;

  private constructor(
    private readonly spec: AgentSpec,
    private readonly broker: Broker,
  ) {
    this.target = actor(this.actorFunction(), { actorName: `bench_${spec.actor}`, queueName: spec.queueName, broker: this.broker });
  }

  static async create(spec: AgentSpec): Promise<MelodramatiqAgent> {
    // Info lines of every worker start would clutter the table, so only warnings and errors show.
    setLogger(new ConsoleLogger({ level: "warn" }));
    return new MelodramatiqAgent(spec, await createBroker(spec));
  }

  private actorFunction(): (value: number) => unknown {
    const record = (): Recorder => {
      if (this.recorder === undefined) {
        throw new Error("The benchmark actor ran before the agent started its worker.");
      }
      return this.recorder;
    };

    switch (this.spec.actor) {
      case "noop":
        return () => {
          record().finished();
        };
      case "io":
        return async () => {
          await delay(1);
          record().finished();
        };
      case "latency":
        return (sentAt: number) => {
          const recorder = record();
          recorder.started(sentAt);
          recorder.finished();
        };
    }
  }

  async prepare(): Promise<void> {
    await this.broker.connect();
  }

  sendOne(sequence: number): Promise<unknown> {
    return this.target.send(sequence);
  }

  sendTimed(sentAt: number): Promise<unknown> {
    return this.target.send(sentAt);
  }

  async startWorker(recorder: Recorder): Promise<void> {
    this.recorder = recorder;
    this.worker = new Worker(this.broker, { concurrency: this.spec.concurrency, queues: [this.spec.queueName] });
    await this.worker.start();
  }

  async stopWorker(): Promise<void> {
    await this.worker?.stop({ timeout: STOP_TIMEOUT });
  }

  async close(): Promise<void> {
    await this.broker.close();
  }
}

/**
 * Loads only the broker module the agent drives, as an app on one broker
 * does, so that the other broker's modules (and its Node built-ins, such
 * as node:tls) do not count in the RSS.
 */
async function createBroker(spec: AgentSpec): Promise<Broker> {
  switch (spec.broker) {
    case "stub":
      return new StubBroker();
    case "redis": {
      const { RedisBroker } = await import("../src/brokers/redis/index.js");
      return new RedisBroker({ url: spec.url, namespace: spec.namespace });
    }
    case "rabbitmq": {
      const { RabbitmqBroker } = await import("../src/brokers/rabbitmq/index.js");
      return new RabbitmqBroker({ url: spec.url });
    }
  }
}
