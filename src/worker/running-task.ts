/**
 * The worker's handle on one actor call in progress. Middleware uses it to
 * end a call early (time limits, shutdown notifications), and the actor
 * receives it as its TaskContext.
 *
 * Node cannot stop a running function from the outside. Interrupting a task
 * therefore aborts its signal and lets the worker fail the message at once,
 * without waiting for the actor: the concurrency slot is freed, and
 * whatever the actor's promise does later is ignored.
 */

import { toError } from "../errors.js";
import type { TaskContext } from "./context.js";
import type { MessageProxy } from "./message-proxy.js";
import type { Worker } from "./worker.js";

/** Outcome of an actor call that settled after its task was interrupted. */
export type LateOutcome = { readonly fulfilled: true; readonly value: unknown } | { readonly fulfilled: false; readonly error: unknown };

export class RunningTask implements TaskContext {
  /** Created on first access to `signal`, because most tasks never read it and an AbortController per message is measurable. */
  private controller: AbortController | undefined;
  private reason: Error | undefined;
  private ended = false;
  private rejectOutcome: ((reason: Error) => void) | undefined;

  constructor(
    readonly message: MessageProxy,
    /** The worker running this task. */
    readonly worker: Worker,
  ) {}

  /** Aborted, with the interruption error as its reason, when the task is interrupted. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) {
        this.controller.abort(this.reason);
      }
    }
    return this.controller.signal;
  }

  /** The error the task was interrupted with, or undefined. */
  get interruption(): Error | undefined {
    return this.reason;
  }

  /** False once the worker has the task's outcome: the actor settled, or the task was interrupted. */
  get isRunning(): boolean {
    return !this.ended;
  }

  /**
   * Ends the task with `reason`: the signal aborts, and the worker fails the
   * message with `reason` without waiting for the actor. Returns false, and
   * does nothing, when the task has already ended.
   */
  interrupt(reason: Error): boolean {
    if (this.ended) {
      return false;
    }

    this.ended = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.rejectOutcome?.(reason);
    return true;
  }

  /**
   * @internal Settles like `work`, or rejects with the interruption error
   * as soon as the task is interrupted. When `work` settles after an
   * interruption, its outcome goes to `onLateOutcome` instead.
   */
  outcome(work: Promise<unknown>, onLateOutcome: (outcome: LateOutcome) => void): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.reason !== undefined) {
        reject(this.reason);
      } else {
        this.rejectOutcome = reject;
      }

      work.then(
        (value: unknown) => {
          if (this.reason !== undefined) {
            onLateOutcome({ fulfilled: true, value });
            return;
          }
          this.ended = true;
          resolve(value);
        },
        (error: unknown) => {
          if (this.reason !== undefined) {
            onLateOutcome({ fulfilled: false, error });
            return;
          }
          this.ended = true;
          reject(toError(error));
        },
      );
    });
  }
}
