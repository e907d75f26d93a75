/**
 * Heartbeats kept by the parent process. The CLI's worker processes would
 * otherwise each start a heartbeat thread (heartbeat-thread.ts), whose V8
 * isolate costs about 10 MiB of resident memory per process. Their parent,
 * the CLI's main process, runs no tasks, so its event loop is never blocked
 * by an actor: it refreshes each child broker's heartbeat instead, and stops
 * as soon as that child exits. So a child that blocks its event loop keeps
 * its messages, and a child that dies loses them to other workers after the
 * heartbeat timeout, as with the thread.
 *
 * The parent marks the children it serves with the environment variable
 * `MELODRAMATIQ_HEARTBEAT_VIA_PARENT=1`; a broker in any other process
 * starts its own thread.
 */

import type { Logger } from "../../logger.js";
import { reconnectDelay } from "./client.js";
import { threadData, type HeartbeatThreadOptions } from "./heartbeat-thread.js";
import { HEARTBEAT_VIA_PARENT_VARIABLE, type HeartbeatRequest } from "./heartbeat-request.js";
import { RespClient } from "./resp/resp-client.js";
import type { RespClientOptions } from "./resp/options.js";

/** Connection options the keeper copies from a request; the rest belong to the child's client. */
const CONNECTION_FIELDS = ["host", "port", "path", "family", "username", "password", "db", "tls", "connectTimeout"] as const;

/**
 * Asks the parent to keep the heartbeat, when this process is a child of a
 * parent that offers it. Returns the handle that stops it, or undefined when
 * the caller must keep the heartbeat itself (no such parent, or connection
 * options that cannot be copied, such as Sentinel's).
 */
export function delegateHeartbeat(options: HeartbeatThreadOptions): { stop(): Promise<void> } | undefined {
  const send = process.send?.bind(process);
  if (process.env[HEARTBEAT_VIA_PARENT_VARIABLE] !== "1" || send === undefined || !process.connected) {
    return undefined;
  }
  const data = threadData(options);
  if (typeof data === "string") {
    return undefined;
  }

  const { brokerId } = data;
  const start: HeartbeatRequest = { type: "melodramatiq:heartbeat", action: "start", ...data };
  send(start);
  options.logger.debug({ brokerId }, `Asked the parent process to keep the heartbeat of broker ${brokerId}.`);
  return {
    stop: () => {
      if (process.connected) {
        const stop: HeartbeatRequest = { type: "melodramatiq:heartbeat", action: "stop", brokerId };
        send(stop);
      }
      return Promise.resolve();
    },
  };
}

/** The parent's side: refreshes the heartbeats of one child's brokers. */
export class HeartbeatKeeper {
  private readonly beats = new Map<string, { readonly client: RespClient; readonly timer: NodeJS.Timeout; failing: boolean; everReady: boolean }>();

  constructor(
    /** Names the child in log lines, e.g. "worker process 2". */
    private readonly childName: string,
    private readonly logger: Logger,
  ) {}

  /** Starts or stops one broker's heartbeat as the child asked. Invalid requests are logged and dropped. */
  handle(request: HeartbeatRequest): void {
    if (request.action === "stop") {
      this.stop(request.brokerId);
      return;
    }

    const { brokerId, key, interval, connection } = request;
    if (typeof key !== "string" || typeof interval !== "number" || !(interval >= 1) || typeof connection !== "object") {
      this.logger.warn({ brokerId }, `Ignoring an invalid heartbeat request of broker ${brokerId} from ${this.childName}.`);
      return;
    }
    this.stop(brokerId);

    const client = new RespClient({
      ...pickConnection(connection),
      connectionName: `melodramatiq-heartbeat-${brokerId}`,
      lazyConnect: true,
      // A refresh while disconnected fails at once rather than piling up.
      enableOfflineQueue: false,
      retryStrategy: reconnectDelay,
    });
    client.on("error", () => {
      // Failed refreshes are reported below, once per series; the client reconnects by itself.
    });
    const timer = setInterval(() => {
      this.refresh(brokerId, key);
    }, interval);
    timer.unref();
    const beat = { client, timer, failing: false, everReady: false };
    this.beats.set(brokerId, beat);
    // Refreshing starts with the first connection, so that start-up is not reported as a failure.
    client.once("ready", () => {
      beat.everReady = true;
      this.refresh(brokerId, key);
    });
    client.connect().catch(() => {
      // The client keeps reconnecting; failed refreshes are reported once it was ready.
    });
    this.logger.debug({ brokerId, interval }, `Keeping the heartbeat of broker ${brokerId} of ${this.childName}.`);
  }

  /** Stops every heartbeat of the child: it exited. */
  stopAll(): void {
    for (const brokerId of [...this.beats.keys()]) {
      this.stop(brokerId);
    }
  }

  private stop(brokerId: string): void {
    const beat = this.beats.get(brokerId);
    if (beat === undefined) {
      return;
    }
    this.beats.delete(brokerId);
    clearInterval(beat.timer);
    beat.client.disconnect();
    this.logger.debug({ brokerId }, `Stopped keeping the heartbeat of broker ${brokerId} of ${this.childName}.`);
  }

  private refresh(brokerId: string, key: string): void {
    const beat = this.beats.get(brokerId);
    if (beat === undefined || !beat.everReady) {
      return;
    }

    beat.client.zadd(key, String(Date.now()), brokerId).then(
      () => {
        if (beat.failing) {
          beat.failing = false;
          this.logger.info({ brokerId }, `The heartbeat of broker ${brokerId} of ${this.childName} is refreshed again.`);
        }
      },
      (error: unknown) => {
        if (!beat.failing && this.beats.get(brokerId) === beat) {
          beat.failing = true;
          this.logger.warn(
            { err: error, brokerId },
            `Failed to refresh the heartbeat of broker ${brokerId} of ${this.childName}: ${error instanceof Error ? error.message : String(error)}. ` +
              "Retrying at every interval.",
          );
        }
      },
    );
  }
}

function pickConnection(connection: Record<string, unknown>): RespClientOptions {
  const picked: Record<string, unknown> = {};
  for (const field of CONNECTION_FIELDS) {
    if (connection[field] !== undefined && connection[field] !== null) {
      picked[field] = connection[field];
    }
  }

  // The IPC channel carries JSON, which turns the Buffers of TLS options (ca, cert, key) into { type, data } objects.
  const tls = picked["tls"];
  if (typeof tls === "object" && tls !== null) {
    picked["tls"] = Object.fromEntries(Object.entries(tls).map(([name, value]) => [name, revivedBuffer(value)]));
  }
  return picked;
}

function revivedBuffer(value: unknown): unknown {
  const candidate = value as { type?: unknown; data?: unknown } | null;
  if (typeof candidate === "object" && candidate !== null && candidate.type === "Buffer" && Array.isArray(candidate.data)) {
    return Buffer.from(candidate.data as number[]);
  }
  return Array.isArray(value) ? value.map(revivedBuffer) : value;
}
