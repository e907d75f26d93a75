/**
 * The task context: which message is being processed, visible from any
 * await depth inside an actor through AsyncLocalStorage.
 */

import { AsyncLocalStorage } from "node:async_hooks";

import type { MessageProxy } from "./message-proxy.js";

/**
 * Context of a running task: its message and its abort signal. The worker calls each actor
 * function with its TaskContext as `this`, so an actor declared as
 * `function (this: TaskContext, id: string) {…}` reads `this.signal`, while
 * `send()` stays typed by the other parameters.
 */
export interface TaskContext {
  readonly message: MessageProxy;
  /**
   * Aborted when the task must stop early: its time limit passed
   * (reason: TimeLimitExceededError) or the worker is stopping and the task
   * asked for shutdown notifications (reason: ShutdownError). It is not
   * aborted when the task ends normally.
   */
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
