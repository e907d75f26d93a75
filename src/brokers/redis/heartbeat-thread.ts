/**
 * Refreshes a Redis broker's heartbeat from a worker thread with its own
 * connection. Other brokers requeue the unacked messages of a broker whose
 * heartbeat is older than the heartbeat timeout. A timer on the main
 * thread cannot fire while a synchronous task blocks the event loop. So,
 * without the thread, a task that blocks for longer than the timeout has
 * its message, and those prefetched with it, processed a second time
 * elsewhere.
 *
 * The broker keeps its main-thread timer as a fallback: when the thread
 * cannot start (ioredis cannot be resolved, or the connection options
 * cannot be copied to a thread), the heartbeat works as before, without
 * the protection against a blocked event loop.
 *
 * The thread runs CommonJS code given as a string (`eval`), so it needs no
 * file of its own, which keeps it working from the TypeScript sources
 * under tsx, from the compiled package and from bundles alike.
 */

import { createRequire } from "node:module";
import { Worker as Thread } from "node:worker_threads";

import type { RedisOptions } from "ioredis";

import type { Logger } from "../../logger.js";

/** Options of `HeartbeatThread.start()`. */
export interface HeartbeatThreadOptions {
  /** ioredis options of the broker's own client; functions are dropped, because they cannot cross to a thread. */
  readonly connection: RedisOptions;
  /** The heartbeats sorted set, `<namespace>:__heartbeats__`. */
  readonly key: string;
  readonly brokerId: string;
  /** Milliseconds between two refreshes. */
  readonly interval: number;
  readonly logger: Logger;
}

/** Data the thread receives; every member must survive structuredClone. */
interface ThreadData {
  readonly ioredisPath: string;
  readonly connection: Record<string, unknown>;
  readonly key: string;
  readonly brokerId: string;
  readonly interval: number;
}

/** Reports from the thread: the first failed refresh of a series, and the first success after it. */
type ThreadReport = { readonly type: "failed"; readonly message: string } | { readonly type: "recovered" };

/**
 * The thread's code. It refreshes only after its first connection, so the
 * start-up is not reported as a failure, and fails a refresh at once while
 * disconnected (no offline queue) instead of piling them up.
 */
const THREAD_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { Redis } = require(workerData.ioredisPath);

const client = new Redis({
  ...workerData.connection,
  lazyConnect: false,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
});
let connected = false;
let failing = false;

// Failed refreshes are reported below; ioredis reconnects by itself.
client.on("error", () => {});

function refresh() {
  if (!connected) {
    return;
  }
  client.zadd(workerData.key, String(Date.now()), workerData.brokerId).then(
    () => {
      if (failing) {
        failing = false;
        parentPort.postMessage({ type: "recovered" });
      }
    },
    (error) => {
      if (!failing) {
        failing = true;
        parentPort.postMessage({ type: "failed", message: String(error && error.message ? error.message : error) });
      }
    },
  );
}

client.on("ready", () => {
  connected = true;
  refresh();
});
setInterval(refresh, workerData.interval);
`;

export class HeartbeatThread {
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly thread: Thread,
    private readonly options: HeartbeatThreadOptions,
  ) {}

  /**
   * Starts the thread. Returns undefined, after a warning, when it cannot
   * start; the caller's main-thread timer then keeps the heartbeat alone.
   */
  static start(options: HeartbeatThreadOptions): HeartbeatThread | undefined {
    const { logger, brokerId } = options;
    const data = threadData(options);
    if (typeof data === "string") {
      logger.warn(
        { brokerId },
        `Failed to start the heartbeat thread of broker ${brokerId}: ${data}. ` +
          "The heartbeat is refreshed on the main thread only, so a task that blocks the event loop for longer than heartbeatTimeout " +
          "lets other workers requeue this worker's unacked messages.",
      );
      return undefined;
    }

    const thread = new Thread(THREAD_SOURCE, { eval: true, workerData: data, name: "melodramatiq-heartbeat" });
    const heartbeat = new HeartbeatThread(thread, options);
    thread.on("message", (report: ThreadReport) => {
      heartbeat.onReport(report);
    });
    thread.on("error", (error: Error) => {
      logger.warn(
        { err: error, brokerId },
        `The heartbeat thread of broker ${brokerId} failed: ${error.message}. The heartbeat is refreshed on the main thread only from now on.`,
      );
    });
    // The thread must never keep a process alive that has nothing else to do.
    thread.unref();
    logger.debug({ brokerId, interval: options.interval }, `Started the heartbeat thread of broker ${brokerId}.`);
    return heartbeat;
  }

  /** Stops the thread and closes its connection. Never rejects; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.thread.terminate().then(
      () => {
        this.options.logger.debug({ brokerId: this.options.brokerId }, `Stopped the heartbeat thread of broker ${this.options.brokerId}.`);
      },
      (error: unknown) => {
        this.options.logger.warn({ err: error, brokerId: this.options.brokerId }, `Failed to stop the heartbeat thread of broker ${this.options.brokerId}.`);
      },
    );
    return this.stopping;
  }

  private onReport(report: ThreadReport): void {
    const { logger, brokerId } = this.options;
    if (report.type === "failed") {
      logger.warn({ brokerId }, `The heartbeat thread of broker ${brokerId} failed to refresh the heartbeat: ${report.message}. It keeps trying.`);
    } else {
      logger.info({ brokerId }, `The heartbeat thread of broker ${brokerId} refreshes the heartbeat again.`);
    }
  }
}

/** Returns the thread's data, or the reason why the thread cannot get it. */
function threadData(options: HeartbeatThreadOptions): ThreadData | string {
  let ioredisPath: string;
  try {
    ioredisPath = createRequire(import.meta.url).resolve("ioredis");
  } catch (error) {
    return `the package ioredis cannot be resolved from ${import.meta.url} (${error instanceof Error ? error.message : String(error)})`;
  }

  const connection: Record<string, unknown> = withoutFunctions(options.connection as Record<string, unknown>);
  const tls = connection["tls"];
  if (typeof tls === "object" && tls !== null) {
    connection["tls"] = withoutFunctions(tls as Record<string, unknown>);
  }

  try {
    return { ioredisPath, connection: structuredClone(connection), key: options.key, brokerId: options.brokerId, interval: options.interval };
  } catch (error) {
    return `the Redis connection options cannot be copied to a thread (${error instanceof Error ? error.message : String(error)})`;
  }
}

/** Returns a shallow copy of `record` without its function members (callbacks such as `retryStrategy`, classes such as `Connector`). */
function withoutFunctions(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => typeof value !== "function"));
}
