/**
 * Data exchanged by the main process and its worker processes: the settings
 * that a worker process gets as its only command-line argument (JSON), and
 * the messages it sends back over the IPC channel.
 */

import type { TsxApi } from "./typescript-loader.js";

/** A module to import in a worker process. */
export interface ResolvedModule {
  /** The MODULE argument as given, for log lines. */
  readonly specifier: string;
  /** Absolute path of the file. */
  readonly path: string;
}

/** Settings of one worker process. */
export interface WorkerProcessConfig {
  /** Position among the worker processes, from 0; shown in the logger name. */
  readonly index: number;
  readonly brokerModule: ResolvedModule & { readonly brokerName?: string };
  readonly modules: readonly ResolvedModule[];
  readonly threads: number;
  readonly queues?: readonly string[];
  readonly workerShutdownTimeout: number;
  readonly verbose: boolean;
  /** Keep the library's default logger instead of installing the CLI's (`--skip-logging`). */
  readonly skipLogging: boolean;
  /** Location of tsx, set when TypeScript modules must be loaded and no loader is active yet. */
  readonly tsx?: TsxApi;
}

/** Sent by a worker process once its worker consumes. */
export interface ReadyMessage {
  readonly type: "ready";
}

/** Reports whether an IPC message from a worker process is a ReadyMessage. */
export function isReadyMessage(value: unknown): value is ReadyMessage {
  return typeof value === "object" && value !== null && (value as { type?: unknown }).type === "ready";
}

/** Parses the JSON argument of a worker process. Throws a TypeError naming the problem. */
export function parseWorkerProcessConfig(text: string | undefined): WorkerProcessConfig {
  if (text === undefined) {
    throw new TypeError("A worker process needs its settings as JSON in its first argument; the melodramatiq command passes them.");
  }

  const value = JSON.parse(text) as Partial<WorkerProcessConfig> | null;
  if (typeof value !== "object" || value === null || typeof value.index !== "number" || typeof value.brokerModule?.path !== "string") {
    throw new TypeError(`Invalid worker process settings: ${text}`);
  }
  return value as WorkerProcessConfig;
}
