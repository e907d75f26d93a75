/**
 * The Prometheus middleware: counts and times the messages this process
 * handles, in the metrics of Python Dramatiq's Prometheus middleware (same
 * names, labels and buckets), on a prom-client Registry of its own.
 *
 * When each metric changes (the hook points of Python Dramatiq 2.2, except
 * for the delayed gauge, whose Python version decrements another series than
 * it increments):
 * - `dramatiq_messages_total`, `dramatiq_message_duration_milliseconds`:
 *   after a message was processed or skipped;
 * - `dramatiq_message_errors_total`: after processing, when the actor threw;
 * - `dramatiq_message_retries_total`: after every enqueue of a message whose
 *   options carry `retries`. A retry is therefore counted twice, once on
 *   `<q>.DQ` when it is scheduled and once on `<q>` when its delay has
 *   passed and the worker moves it back, as in Python;
 * - `dramatiq_message_rejects_total`: after a nack (dead-lettering);
 * - `dramatiq_messages_inprogress`: between the beforeProcessMessage hook
 *   and the end of processing;
 * - `dramatiq_delayed_messages_inprogress`: from beforeDelayMessage until
 *   the worker moves the message to its queue, the worker stops, or the
 *   broker drops the delivery.
 */

import type { Registry } from "prom-client";

import type { Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import type { Message } from "../message/message.js";
import { Middleware, type ProcessOutcome } from "../middleware/middleware.js";
import { loadPeer } from "../optional-peer.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import type { Worker } from "../worker/worker.js";
import { resolveListenAddress, type ListenAddress } from "./address.js";
import { snapshotRegistry, type MetricsSnapshot } from "./aggregate.js";
import { createDramatiqMetrics, labelKey, type DramatiqMetrics, type MessageLabels } from "./definitions.js";
import { listenForScrapes, type ExpositionServer } from "./exposition.js";
import { QueueDepthSampler, type QueueDepthFunction } from "./queue-depth.js";

/** Options of the Prometheus middleware. */
export interface PrometheusOptions extends ListenAddress {
  /**
   * Registry the metrics are created on. Pass one to serve your own metrics
   * beside these; it must not contain metrics with the same names.
   * @defaultValue a new Registry, not prom-client's global one
   */
  registry?: Registry;
  /**
   * Returns the number of messages in a queue, for `melodramatiq_queue_messages`.
   * @defaultValue the broker's `queueDepth(queueName)` method if it has one; otherwise the metric has no series
   */
  queueDepth?: QueueDepthFunction;
  /** Milliseconds a scrape waits for the queue depths before leaving them out. @defaultValue 5000 */
  queueDepthTimeout?: number;
}

interface RunningMessage {
  readonly startedAt: number;
  readonly labels: MessageLabels;
}

interface HeldMessage {
  readonly message: MessageProxy;
  readonly labels: MessageLabels;
}

const DEFAULT_QUEUE_DEPTH_TIMEOUT = 5000;

export class Prometheus extends Middleware {
  /** The registry that contains this middleware's metrics. */
  readonly registry: Registry;
  /** Host the exposition server binds to. */
  readonly host: string;
  /** Port the exposition server listens on. */
  readonly port: number;
  /** The metric objects, for tests and for apps that read them directly. */
  readonly metrics: DramatiqMetrics;

  private readonly logger = getLogger("melodramatiq.middleware.Prometheus");
  private readonly running = new Map<MessageProxy, RunningMessage>();
  private readonly held = new Map<string, HeldMessage>();
  // Series of the two gauges that have ever had a message, so that they
  // report 0 between messages instead of vanishing, as Python's do.
  private readonly runningSeries = new Map<string, MessageLabels>();
  private readonly heldSeries = new Map<string, MessageLabels>();
  private readonly queueDepth: QueueDepthSampler;
  private broker: Broker | undefined;
  private warnedAboutSecondBroker = false;

  /**
   * Creates the metrics. Throws a ConfigurationError when prom-client is not
   * installed, or when the port (option or `dramatiq_prom_port`) is invalid.
   */
  constructor(options: PrometheusOptions = {}) {
    super();
    const client = loadPeer<typeof import("prom-client")>("prom-client", "The Prometheus middleware");

    const address = resolveListenAddress(options);
    this.host = address.host;
    this.port = address.port;

    const timeout = options.queueDepthTimeout ?? DEFAULT_QUEUE_DEPTH_TIMEOUT;
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0) {
      throw new ConfigurationError(`Invalid queueDepthTimeout ${String(timeout)}: it must be a number of milliseconds above 0.`);
    }
    this.queueDepth = new QueueDepthSampler(options.queueDepth, timeout, this.logger);

    this.registry = options.registry ?? new client.Registry();
    this.metrics = createDramatiqMetrics(client, this.registry, {
      inProgress: () => countByLabels(this.runningSeries, this.running.values()),
      delayedInProgress: () => countByLabels(this.heldSeries, this.heldMessages()),
      queueMessages: () => this.queueDepth.sample(this.broker),
    });
  }

  /**
   * Returns a snapshot of this process's metrics, for the main process of
   * the `melodramatiq` command to merge with those of the other worker
   * processes (see `serveMetricsToMainProcess()`).
   */
  async collectForAggregation(): Promise<MetricsSnapshot> {
    return snapshotRegistry(this.registry);
  }

  /**
   * Starts an exposition server for this process's registry, for an app
   * that runs its worker without the `melodramatiq` command. Under that
   * command, the main process serves the merged metrics of every worker
   * process instead, so do not call this there.
   *
   * @param address Overrides the host and port given to the constructor.
   */
  async startServer(address: ListenAddress = {}): Promise<ExpositionServer> {
    const resolved = resolveListenAddress({ host: address.host ?? this.host, port: address.port ?? this.port });
    return listenForScrapes(resolved, async () => ({
      contentType: this.registry.contentType,
      body: await this.registry.metrics(),
    }));
  }

  override afterDeclareQueue(broker: Broker): void {
    this.bind(broker);
  }

  override afterProcessBoot(broker: Broker): void {
    this.bind(broker);
  }

  override beforeWorkerBoot(broker: Broker): void {
    this.bind(broker);
  }

  override afterWorkerShutdown(_broker: Broker, _worker: Worker): void {
    // The worker has put every held delayed message back on its queue.
    if (this.held.size > 0) {
      this.logger.debug({ count: this.held.size }, `Forgetting ${this.held.size} delayed message(s) that the stopped worker requeued.`);
    }
    this.held.clear();
  }

  override afterEnqueue(broker: Broker, message: Message, delay: number | undefined): void {
    this.bind(broker);
    if (Object.hasOwn(message.options, "retries")) {
      this.metrics.retries.inc(labelsOf(message));
    }

    // An enqueue without delay of a held message is the worker moving it to
    // its queue once its eta has passed: it no longer waits in memory.
    if (delay === undefined) {
      this.held.delete(message.messageId);
    }
  }

  override beforeDelayMessage(_broker: Broker, message: MessageProxy): void {
    const labels = labelsOf(message);
    this.heldSeries.set(labelKey(labels), labels);
    this.held.set(message.messageId, { message, labels });
  }

  override beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    this.bind(broker);
    this.held.delete(message.messageId);
    const labels = labelsOf(message);
    this.runningSeries.set(labelKey(labels), labels);
    this.running.set(message, { startedAt: performance.now(), labels });
  }

  override afterProcessMessage(_broker: Broker, message: MessageProxy, outcome: ProcessOutcome): void {
    this.finish(message, outcome.error !== undefined);
  }

  override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
    this.finish(message, false);
  }

  override afterAck(_broker: Broker, message: MessageProxy): void {
    this.finishUnfinished(message);
  }

  override afterNack(_broker: Broker, message: MessageProxy): void {
    this.finishUnfinished(message);
    this.metrics.rejects.inc(labelsOf(message));
  }

  /**
   * Records the end of a message's processing. A message this middleware
   * did not see start (its actor is not declared, so no
   * beforeProcessMessage ran) is not counted, as in Python.
   */
  private finish(message: MessageProxy, failed: boolean): void {
    const running = this.running.get(message);
    if (running === undefined) {
      return;
    }

    this.running.delete(message);
    this.metrics.durations.observe(running.labels, performance.now() - running.startedAt);
    this.metrics.messages.inc(running.labels);
    if (failed) {
      this.metrics.errors.inc(running.labels);
    }
  }

  /**
   * Finishes a message that is acked or nacked without an
   * afterProcessMessage hook, which happens when a later middleware's
   * beforeProcessMessage throws. Python Dramatiq reports that case as a
   * processed message with an error.
   */
  private finishUnfinished(message: MessageProxy): void {
    if (this.running.has(message)) {
      this.finish(message, message.failed || message.error !== undefined);
    }
  }

  /** Held messages that the broker has not dropped; dropped ones are forgotten. */
  private *heldMessages(): Generator<HeldMessage> {
    for (const [messageId, held] of this.held) {
      if (held.message.abandoned) {
        this.held.delete(messageId);
      } else {
        yield held;
      }
    }
  }

  private bind(broker: Broker): void {
    if (this.broker === undefined) {
      this.broker = broker;
    } else if (this.broker !== broker && !this.warnedAboutSecondBroker) {
      this.warnedAboutSecondBroker = true;
      this.logger.warn(
        {},
        "This Prometheus middleware is installed on two brokers; queue depths are read from the first. Give each broker its own middleware.",
      );
    }
  }
}

function labelsOf(message: Message | MessageProxy): MessageLabels {
  return { queue_name: message.queueName, actor_name: message.actorName };
}

/** Counts entries by their labels, with 0 for each series in `series` that has none. */
function countByLabels(series: ReadonlyMap<string, MessageLabels>, entries: Iterable<{ readonly labels: MessageLabels }>): [MessageLabels, number][] {
  const counts = new Map<string, [MessageLabels, number]>();
  for (const [key, labels] of series) {
    counts.set(key, [labels, 0]);
  }

  for (const { labels } of entries) {
    const key = labelKey(labels);
    const entry = counts.get(key);
    if (entry === undefined) {
      counts.set(key, [labels, 1]);
    } else {
      entry[1] += 1;
    }
  }
  return [...counts.values()];
}
