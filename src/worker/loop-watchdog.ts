/**
 * Reports a blocked event loop, naming the tasks that were in progress.
 * While the loop is blocked, nothing else in the process runs: no other
 * task, no ack, no timer-driven heartbeat, no time limit.
 *
 * The default watchdog is a timer on the main thread. A timer that fires
 * much later than due shows that the loop was blocked, so the warning comes
 * when the loop turns again, and a loop that never turns again is never
 * reported. It costs one timer and no memory to speak of.
 *
 * The Worker option `eventLoopWatchdogThread` swaps in a watchdog thread
 * (`loop-watchdog-thread.ts`), which warns while the block lasts, even one
 * that never ends, at the cost of a second V8 isolate (about 9 MiB).
 */

import { getLogger, type Logger } from "../logger.js";
import { InFlightList, type InFlightEntry } from "./in-flight-list.js";

/** Identity of a running task, as warnings name it. */
export interface WatchedTask {
  readonly actorName: string;
  readonly messageId: string;
}

/**
 * A running watchdog. The worker calls `enter` when a task starts and
 * `leave` with what `enter` returned when it ends, so a watchdog finds the
 * task again without a lookup.
 */
export interface LoopWatchdog<Ticket = unknown> {
  enter(task: WatchedTask): Ticket;
  leave(ticket: Ticket): void;
  /** Stops watching. Never rejects, and is safe to call twice. */
  stop(): Promise<void>;
}

/** Options of both watchdogs. */
export interface LoopWatchdogOptions {
  /** Milliseconds the loop may stay blocked before the warning. */
  readonly threshold: number;
  /** Tasks that can run at once: the worker's concurrency. */
  readonly slots: number;
  /** @defaultValue the logger `melodramatiq.worker.LoopWatchdog` */
  readonly logger?: Logger;
}

/**
 * The timer fires this many times per threshold, so a loop that turns on
 * time shows gaps well below the threshold.
 */
const CHECKS_PER_THRESHOLD = 4;
const MIN_CHECK_INTERVAL = 10;

/** Returns the milliseconds between two checks of either watchdog for `threshold`. */
export function checkInterval(threshold: number): number {
  return Math.max(MIN_CHECK_INTERVAL, Math.floor(threshold / CHECKS_PER_THRESHOLD));
}

/** Starts the timer watchdog, or the thread watchdog when `thread` is true. */
export async function startLoopWatchdog(options: LoopWatchdogOptions & { readonly thread: boolean }): Promise<LoopWatchdog> {
  if (options.thread) {
    // Loaded only here, so a process without the thread never loads node:worker_threads.
    const { ThreadLoopWatchdog } = await import("./loop-watchdog-thread.js");
    return ThreadLoopWatchdog.start(options);
  }
  return TimerLoopWatchdog.start(options);
}

/** The default watchdog: a main-thread timer that detects when it fired late. */
export class TimerLoopWatchdog implements LoopWatchdog<InFlightEntry<WatchedTask>> {
  private readonly running = new InFlightList<WatchedTask>();
  /**
   * Tasks that ended since the last check while the loop was already late.
   * A synchronous task that blocks the loop has ended by the time the timer
   * fires, and must still be named. Tasks that end on time are not kept,
   * so this stays empty while the loop turns normally.
   */
  private readonly endedLate: WatchedTask[] = [];
  private readonly timer: NodeJS.Timeout;
  private lastCheck = performance.now();

  private constructor(
    private readonly threshold: number,
    private readonly interval: number,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => {
      this.check();
    }, interval);
    this.timer.unref();
  }

  static start(options: LoopWatchdogOptions): TimerLoopWatchdog {
    const { threshold, logger = getLogger("melodramatiq.worker.LoopWatchdog") } = options;
    const interval = checkInterval(threshold);
    logger.debug({ threshold }, `Started the event loop watchdog with a threshold of ${threshold} ms.`);
    return new TimerLoopWatchdog(threshold, interval, logger);
  }

  enter(task: WatchedTask): InFlightEntry<WatchedTask> {
    return this.running.add(task);
  }

  leave(entry: InFlightEntry<WatchedTask>): void {
    this.running.remove(entry);
    if (performance.now() - this.lastCheck > this.threshold) {
      this.endedLate.push(entry.value);
    }
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    this.running.clear();
    this.endedLate.length = 0;
    return Promise.resolve();
  }

  private check(): void {
    const now = performance.now();
    const blockedFor = Math.round(now - this.lastCheck - this.interval);
    this.lastCheck = now;
    if (blockedFor <= this.threshold) {
      this.endedLate.length = 0;
      return;
    }

    const tasks = [...this.endedLate, ...this.running.values()].map(({ actorName, messageId }) => ({ actorName, messageId }));
    this.endedLate.length = 0;
    const inProgress =
      tasks.length === 0
        ? "No task was in progress, so code outside the actors blocked it."
        : `Tasks in progress during the block: ${tasks.map((task) => `actor '${task.actorName}' (message ${task.messageId})`).join(", ")}.`;
    this.logger.warn(
      { blockedFor, tasks },
      `The event loop was blocked for ${blockedFor} ms, more than the ${this.threshold} ms threshold. ${inProgress} ` +
        "While it was blocked, this process ran no other task and sent no ack or timer-driven heartbeat; " +
        "move long synchronous work to a worker thread or a child process.",
    );
  }
}
