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
 * cannot start (the connection options cannot be copied to a thread, or
 * they use Sentinel), the heartbeat works as before, without the protection
 * against a blocked event loop.
 *
 * The thread runs CommonJS code given as a string (`eval`), so it needs no
 * file of its own, which keeps it working from the TypeScript sources
 * under tsx, from the compiled package and from bundles alike. It speaks
 * just enough RESP2 for AUTH, SELECT and ZADD, whose replies are single
 * lines, instead of loading a Redis client library, so the thread costs
 * little more than its V8 isolate.
 */

import { createRequire } from "node:module";
import type { Worker as Thread } from "node:worker_threads";

import type { Logger } from "../../logger.js";

/** Options of `HeartbeatThread.start()`. */
export interface HeartbeatThreadOptions {
  /**
   * Connection options of the broker's client (the built-in client's or
   * an ioredis client's): host, port, path, family, username, password,
   * db, tls and connectTimeout are read. Functions are dropped, because
   * they cannot cross to a thread.
   */
  readonly connection: object;
  /** The heartbeats sorted set, `<namespace>:__heartbeats__`. */
  readonly key: string;
  readonly brokerId: string;
  /** Milliseconds between two refreshes. */
  readonly interval: number;
  readonly logger: Logger;
}

/** Data the thread receives; every member must survive structuredClone. */
interface ThreadData {
  readonly connection: Record<string, unknown>;
  readonly key: string;
  readonly brokerId: string;
  readonly interval: number;
}

/** Reports from the thread: the first failed refresh of a series, and the first success after it. */
type ThreadReport = { readonly type: "failed"; readonly message: string } | { readonly type: "recovered" };

/**
 * The thread's code. It refreshes only after its first connection, so the
 * start-up is not reported as a failure. While disconnected, a refresh
 * fails at once instead of waiting, and at most one ZADD is in flight, so
 * refreshes never pile up. It reconnects with a delay that doubles from
 * 100 ms up to 3 s.
 */
const THREAD_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const tls = require("node:tls");

const options = workerData.connection;
const MIN_RECONNECT_DELAY = 100;
const MAX_RECONNECT_DELAY = 3000;
let socket;
let replyCallbacks = [];
let unread = "";
let ready = false;
let everReady = false;
let refreshInFlight = false;
let failing = false;
let reconnectDelay = MIN_RECONNECT_DELAY;

function encode(args) {
  let text = "*" + args.length + "\\r\\n";
  for (const arg of args) {
    text += "$" + Buffer.byteLength(arg) + "\\r\\n" + arg + "\\r\\n";
  }
  return text;
}

// callback(error, closed): closed is true when the connection closed before the reply.
function send(args, callback) {
  replyCallbacks.push(callback);
  socket.write(encode(args));
}

function reportFailure(message) {
  if (!failing) {
    failing = true;
    parentPort.postMessage({ type: "failed", message: message.replace(/\\.$/, "") });
  }
}

function reportSuccess() {
  if (failing) {
    failing = false;
    parentPort.postMessage({ type: "recovered" });
  }
}

function openSocket() {
  const usePath = typeof options.path === "string" && options.path !== "";
  const address = { host: options.host || "localhost", port: options.port || 6379 };
  if (typeof options.family === "number") {
    address.family = options.family;
  }
  if (usePath) {
    return net.connect({ path: options.path });
  }
  if (options.tls && typeof options.tls === "object") {
    return tls.connect({ ...address, ...options.tls });
  }
  return net.connect(address);
}

function connect() {
  const current = openSocket();
  const secure = !(typeof options.path === "string" && options.path !== "") && options.tls && typeof options.tls === "object";
  socket = current;
  replyCallbacks = [];
  unread = "";
  const timeout = options.connectTimeout || 10000;
  const timer = setTimeout(() => current.destroy(), timeout);

  current.once(secure ? "secureConnect" : "connect", () => {
    current.setNoDelay(true);
    const steps = [];
    if (options.password) {
      steps.push(options.username ? ["AUTH", options.username, options.password] : ["AUTH", options.password]);
    }
    if (options.db) {
      steps.push(["SELECT", String(options.db)]);
    }

    let left = steps.length;
    const done = () => {
      clearTimeout(timer);
      ready = true;
      everReady = true;
      reconnectDelay = MIN_RECONNECT_DELAY;
      refresh();
    };
    if (left === 0) {
      done();
    }
    for (const step of steps) {
      send(step, (error, closed) => {
        if (error && !closed) {
          reportFailure("Redis rejected " + step[0] + ": " + error.message);
          current.destroy();
        } else if (!error && --left === 0) {
          done();
        }
      });
    }
  });

  current.setEncoding("utf8");
  current.on("data", (chunk) => {
    unread += chunk;
    let end;
    while ((end = unread.indexOf("\\r\\n")) !== -1) {
      const line = unread.slice(0, end);
      unread = unread.slice(end + 2);
      const callback = replyCallbacks.shift();
      if (callback === undefined || (line[0] !== "+" && line[0] !== ":" && line[0] !== "-")) {
        // Not a reply to AUTH, SELECT or ZADD: start over on a new connection.
        current.destroy();
        return;
      }
      callback(line[0] === "-" ? new Error(line.slice(1)) : null, false);
    }
  });

  // A failed connection shows as a close, and the refreshes it fails are reported.
  current.on("error", () => {});
  current.on("close", () => {
    clearTimeout(timer);
    if (socket !== current) {
      return;
    }
    ready = false;
    const callbacks = replyCallbacks;
    replyCallbacks = [];
    for (const callback of callbacks) {
      callback(new Error("the connection to Redis closed before the reply arrived"), true);
    }
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, MAX_RECONNECT_DELAY);
  });
}

function refresh() {
  if (!everReady || refreshInFlight) {
    return;
  }
  if (!ready) {
    reportFailure("not connected to Redis; reconnecting");
    return;
  }

  refreshInFlight = true;
  send(["ZADD", workerData.key, String(Date.now()), workerData.brokerId], (error) => {
    refreshInFlight = false;
    if (error) {
      reportFailure(error.message);
    } else {
      reportSuccess();
    }
  });
}

connect();
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

    // Loaded here rather than at import, so that a CLI worker process, whose parent keeps its heartbeat, never loads node:worker_threads (about 2 MiB).
    const { Worker } = createRequire(import.meta.url)("node:worker_threads") as typeof import("node:worker_threads");
    const thread = new Worker(THREAD_SOURCE, { eval: true, workerData: data, name: "melodramatiq-heartbeat" });
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

/** Returns the data a heartbeat needs elsewhere (a thread or the parent process), or the reason why it cannot be copied. */
export function threadData(options: HeartbeatThreadOptions): ThreadData | string {
  const connection: Record<string, unknown> = withoutFunctions(options.connection as Record<string, unknown>);
  const sentinels = connection["sentinels"];
  if (Array.isArray(sentinels) && sentinels.length > 0) {
    return "the client connects through Redis Sentinel, which the heartbeat thread does not support";
  }

  const tls = connection["tls"];
  if (typeof tls === "object" && tls !== null) {
    connection["tls"] = withoutFunctions(tls as Record<string, unknown>);
  }

  try {
    return { connection: structuredClone(connection), key: options.key, brokerId: options.brokerId, interval: options.interval };
  } catch (error) {
    return `the Redis connection options cannot be copied to a thread (${error instanceof Error ? error.message : String(error)})`;
  }
}

/** Returns a shallow copy of `record` without its function members (callbacks such as `retryStrategy`, classes such as `Connector`). */
function withoutFunctions(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => typeof value !== "function"));
}
