/**
 * Sampling of queue depths for `melodramatiq_queue_messages`. Brokers have
 * no common method for this yet, so the depth comes from a function the
 * application passes, or from a `queueDepth(queueName)` method when the
 * broker has one.
 */

import type { Broker } from "../broker.js";
import type { Logger } from "../logger.js";
import { deadLetterQueueName, delayQueueName } from "../message/queue-names.js";

/**
 * Returns the number of messages in one queue: a canonical queue (`q`), a
 * delay queue (`q.DQ`) or a dead-letter queue (`q.XQ`). Returning
 * undefined leaves that queue out of the scrape.
 */
export type QueueDepthFunction = (queueName: string) => number | undefined | Promise<number | undefined>;

/** Shortest interval between two warnings about failed samples, in ms; failures in between are counted. */
const WARNING_INTERVAL = 60_000;

interface SampleFailure {
  readonly queueName: string;
  readonly reason: string;
  readonly error?: unknown;
}

export class QueueDepthSampler {
  private lastWarningAt = Number.NEGATIVE_INFINITY;
  private suppressedWarnings = 0;

  constructor(
    private readonly source: QueueDepthFunction | undefined,
    /** Milliseconds one sample of every queue may take; queues without a depth by then are left out. */
    private readonly timeout: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Returns the depth of every declared queue of `broker` and of its delay
   * and dead-letter queues, leaving out the queues whose depth failed, was
   * invalid or did not arrive within the timeout. Never throws.
   */
  async sample(broker: Broker | undefined): Promise<[string, number][]> {
    const depthOf = this.resolveSource(broker);
    if (broker === undefined || depthOf === undefined) {
      return [];
    }

    const queueNames = [...broker.getDeclaredQueues()].flatMap((name) => [name, delayQueueName(name), deadLetterQueueName(name)]);
    const depths = new Map<string, number>();
    const failures: SampleFailure[] = [];

    const samples = queueNames.map(async (queueName) => {
      try {
        const depth = await depthOf(queueName);
        if (typeof depth === "number" && Number.isFinite(depth) && depth >= 0) {
          depths.set(queueName, depth);
        } else if (depth !== undefined) {
          failures.push({ queueName, reason: `returned ${String(depth)} instead of a count` });
        }
      } catch (error) {
        failures.push({ queueName, reason: "threw", error });
      }
    });

    const finished = await settlesWithin(Promise.all(samples), this.timeout);
    // Copy now: samples that arrive after the timeout must not change this scrape.
    const result = [...depths];
    if (!finished) {
      const settled = new Set([...depths.keys(), ...failures.map((failure) => failure.queueName)]);
      for (const queueName of queueNames.filter((name) => !settled.has(name))) {
        failures.push({ queueName, reason: `timed out after ${this.timeout} ms` });
      }
    }

    this.warn(failures);
    return result;
  }

  private resolveSource(broker: Broker | undefined): QueueDepthFunction | undefined {
    if (this.source !== undefined) {
      return this.source;
    }

    // A broker may offer the method before every broker does.
    const method = (broker as { queueDepth?: unknown } | undefined)?.queueDepth;
    if (typeof method === "function") {
      return (queueName) => (method as QueueDepthFunction).call(broker, queueName);
    }
    return undefined;
  }

  private warn(failures: readonly SampleFailure[]): void {
    const first = failures[0];
    if (first === undefined) {
      return;
    }

    const now = Date.now();
    if (now - this.lastWarningAt < WARNING_INTERVAL) {
      this.suppressedWarnings += 1;
      return;
    }

    const suppressed = this.suppressedWarnings;
    this.lastWarningAt = now;
    this.suppressedWarnings = 0;
    this.logger.warn(
      { err: first.error, queueName: first.queueName, failedQueues: failures.length, suppressedWarnings: suppressed },
      `Failed to sample the depth of queue '${first.queueName}' (the depth source ${first.reason}) and of ` +
        `${failures.length - 1} other queue(s); they are left out of melodramatiq_queue_messages.`,
    );
  }
}

/** Resolves true when `promise` settles within `timeout` ms, else false. */
async function settlesWithin(promise: Promise<unknown>, timeout: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, timeout);
  });

  try {
    return await Promise.race([promise.then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}
