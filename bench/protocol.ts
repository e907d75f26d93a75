/**
 * What the benchmark's parent process and its child processes (agents)
 * send each other over the IPC channel. An agent is one process of one
 * library: it enqueues, runs a worker, or sends at a steady rate, one phase
 * at a time, when the parent tells it to.
 */

export type Library = "melodramatiq" | "bullmq";
export type BrokerKind = "stub" | "redis" | "rabbitmq";

/**
 * The actor (or BullMQ processor) that the worker runs: `noop` returns at
 * once, `io` awaits a 1 ms timer, `latency` records how long the message
 * took from send to start (a negative send time marks a warm-up message,
 * which is processed but not timed).
 */
export type ActorKind = "noop" | "io" | "latency";

/** Everything an agent needs to build its broker or queue; passed as the child's only argument, in JSON. */
export interface AgentSpec {
  readonly library: Library;
  readonly broker: BrokerKind;
  /** Server URL of the broker; unused for the stub. */
  readonly url: string;
  readonly queueName: string;
  /** Redis key namespace of melodramatiq, or key prefix of BullMQ. */
  readonly namespace: string;
  readonly actor: ActorKind;
  /** Tasks a worker runs at once. */
  readonly concurrency: number;
  /** Sends one enqueueing agent keeps in flight. */
  readonly sendWindow: number;
}

export type ParentMessage =
  /** Enqueue `count` messages as fast as the send window allows. */
  | { readonly type: "enqueue"; readonly count: number }
  /** Start a worker; it runs until "stop". */
  | { readonly type: "drain" }
  /**
   * Send `warmUp` untimed messages and wait `idleMs`, then send `rate`
   * messages per second for `seconds` seconds, each carrying its send time.
   */
  | { readonly type: "steady"; readonly warmUp: number; readonly idleMs: number; readonly rate: number; readonly seconds: number }
  /** Stop the worker and report the drain. */
  | { readonly type: "stop" }
  /** Close connections and exit. */
  | { readonly type: "exit" };

/** Outcome of one phase in one agent; times are `monotonicMs()` readings. */
export interface PhaseResult {
  readonly startedAt: number;
  /** For a drain: when the last message finished processing. */
  readonly finishedAt: number;
  /** Messages enqueued or processed, warm-up messages included. */
  readonly count: number;
  readonly peakRssMiB: number;
  /** CPU time (user and system) this process spent in the phase, in ms. */
  readonly cpuMs: number;
  /** Send-to-start latencies in ms, for the `latency` actor. */
  readonly latenciesMs?: readonly number[];
}

export type ChildMessage =
  | { readonly type: "ready" }
  /** The worker has started and consumes. */
  | { readonly type: "started" }
  | { readonly type: "progress"; readonly processed: number }
  | { readonly type: "done"; readonly result: PhaseResult }
  | { readonly type: "failed"; readonly error: string };
