/**
 * The task context: which message is being processed, visible from any
 * await depth inside an actor through AsyncLocalStorage.
 */

import { AsyncLocalStorage } from "node:async_hooks";

import type { MessageProxy } from "./message-proxy.js";

/** What a running task can learn about itself. */
export interface TaskContext {
  readonly message: MessageProxy;
  /** Aborted when the task must stop early (time limit, worker shutdown). */
  readonly signal: AbortSignal;
}

export const taskStorage = new AsyncLocalStorage<TaskContext>();

/** Returns the message being processed by the calling task, or undefined outside a task. */
export function currentMessage(): MessageProxy | undefined {
  return taskStorage.getStore()?.message;
}

/** Returns the abort signal of the calling task, or undefined outside a task. */
export function currentSignal(): AbortSignal | undefined {
  return taskStorage.getStore()?.signal;
}
