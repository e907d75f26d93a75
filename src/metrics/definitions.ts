/**
 * The metrics of the Prometheus middleware. Names, types, label names and
 * histogram buckets are those of Python Dramatiq 2.2's Prometheus
 * middleware, so that one dashboard serves workers of both libraries.
 * `melodramatiq_queue_messages` is an addition of this library.
 */

import type { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Labels of every Dramatiq metric. */
export const LABEL_NAMES = ["queue_name", "actor_name"] as const;

export type LabelName = (typeof LABEL_NAMES)[number];

/** Label values of one series: the queue name as the message carries it and the actor name. */
export type MessageLabels = Record<LabelName, string>;

/**
 * Upper bounds of `dramatiq_message_duration_milliseconds`, in ms, as in
 * Python Dramatiq; prom-client adds the `+Inf` bucket.
 */
export const DURATION_BUCKETS: readonly number[] = [
  5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 30000, 60000, 600000, 900000,
];

/** Name of each metric, by role. */
export const METRIC_NAMES = {
  messages: "dramatiq_messages_total",
  errors: "dramatiq_message_errors_total",
  retries: "dramatiq_message_retries_total",
  rejects: "dramatiq_message_rejects_total",
  inProgress: "dramatiq_messages_inprogress",
  delayedInProgress: "dramatiq_delayed_messages_inprogress",
  durations: "dramatiq_message_duration_milliseconds",
  queueMessages: "melodramatiq_queue_messages",
} as const;

/** Current gauge values by series, computed when the registry is read. */
export interface GaugeSources {
  /** Messages whose actor call is running now, counted by labels; 0 for series that had messages before. */
  inProgress(): Iterable<[MessageLabels, number]>;
  /** Delayed messages kept in this process until their eta, counted by labels; 0 for series that had messages before. */
  delayedInProgress(): Iterable<[MessageLabels, number]>;
  /** Messages in each queue, by queue name; resolves to no entries when no depth source is configured. */
  queueMessages(): Promise<Iterable<[string, number]>>;
}

/** The metric objects the middleware updates. */
export interface DramatiqMetrics {
  readonly messages: Counter<LabelName>;
  readonly errors: Counter<LabelName>;
  readonly retries: Counter<LabelName>;
  readonly rejects: Counter<LabelName>;
  readonly inProgress: Gauge<LabelName>;
  readonly delayedInProgress: Gauge<LabelName>;
  readonly durations: Histogram<LabelName>;
  readonly queueMessages: Gauge<"queue_name">;
}

/**
 * Creates the metrics on `registry`. The gauges are computed from `sources`
 * on each read of the registry (a scrape, or a snapshot for aggregation),
 * so they cannot drift when a message leaves without the hook that would
 * have decremented them.
 */
export function createDramatiqMetrics(client: typeof import("prom-client"), registry: Registry, sources: GaugeSources): DramatiqMetrics {
  const registers = [registry];
  const labelNames = LABEL_NAMES;

  const counter = (name: string, help: string): Counter<LabelName> => new client.Counter({ name, help, labelNames, registers });

  return {
    messages: counter(METRIC_NAMES.messages, "Messages processed (the actor returned, threw, or the message was skipped)."),
    errors: counter(METRIC_NAMES.errors, "Processed messages whose actor threw an error."),
    retries: counter(
      METRIC_NAMES.retries,
      "Enqueues of messages that carry a retries count: once on the delay queue when the retry is scheduled, once on the queue when its delay has passed.",
    ),
    rejects: counter(METRIC_NAMES.rejects, "Messages nacked, which moves them to the dead-letter queue."),
    inProgress: new client.Gauge({
      name: METRIC_NAMES.inProgress,
      help: "Messages whose actor call is running in this process.",
      labelNames,
      registers,
      collect() {
        setCounts(this, sources.inProgress());
      },
    }),
    delayedInProgress: new client.Gauge({
      name: METRIC_NAMES.delayedInProgress,
      help: "Delayed messages held in this process's memory until their eta.",
      labelNames,
      registers,
      collect() {
        setCounts(this, sources.delayedInProgress());
      },
    }),
    durations: new client.Histogram({
      name: METRIC_NAMES.durations,
      help: "Time spent processing a message, from the beforeProcessMessage hooks to the afterProcessMessage hooks, in milliseconds.",
      labelNames,
      buckets: [...DURATION_BUCKETS],
      registers,
    }),
    queueMessages: new client.Gauge({
      name: METRIC_NAMES.queueMessages,
      help: "Messages in each queue, delay queue and dead-letter queue, as the broker reports them when metrics are read.",
      labelNames: ["queue_name"],
      registers,
      // Every worker process samples the same queues, so the main process
      // keeps one sample instead of adding them up.
      aggregator: "max",
      async collect() {
        const depths = await sources.queueMessages();
        this.reset();
        for (const [queueName, depth] of depths) {
          this.set({ queue_name: queueName }, depth);
        }
      },
    }),
  };
}

/** Replaces the series of `gauge` with `counts`. */
function setCounts(gauge: Gauge<LabelName>, counts: Iterable<[MessageLabels, number]>): void {
  gauge.reset();
  for (const [labels, count] of counts) {
    gauge.set(labels, count);
  }
}

/** Returns a string that identifies a series, for use as a Map key. */
export function labelKey(labels: MessageLabels): string {
  return `${labels.queue_name}\u0000${labels.actor_name}`;
}
