/**
 * Reports a blocked event loop from a worker thread, while the block lasts
 * (the opt-in `eventLoopWatchdogThread` of the Worker). A timer on the main thread bumps a counter
 * in shared memory, and a watchdog thread reads it. When the counter has
 * not moved for longer than the threshold, the thread warns once per
 * stall and names the tasks that were running. While the loop is blocked,
 * nothing else in the process runs: no other task, no ack, no timer-driven
 * heartbeat, no time limit.
 *
 * The running tasks are known to the thread because the worker writes each
 * task's message id and actor name into a shared slot when the task starts
 * and clears it when the task ends (`enter`/`leave`).
 *
 * Where the warning goes: the main thread's logger cannot run while the
 * loop is blocked. When the root logger is the built-in ConsoleLogger at
 * level `warn` or lower, the thread writes the warning to stderr (file
 * descriptor 2) in the same layout at once, so even a loop that never
 * turns again is reported. With any other logger, the warning goes through
 * that logger when the loop turns again, which a loop stuck for good never
 * does.
 */

import { Worker as Thread } from "node:worker_threads";

import { ConsoleLogger, getLogger, getRootLogger, type Logger } from "../logger.js";
import { checkInterval, type LoopWatchdog, type LoopWatchdogOptions, type WatchedTask } from "./loop-watchdog.js";

/** Bytes of one task slot: the message id, a NUL, then the actor name, cut to fit. */
const SLOT_BYTES = 256;

/** Data the thread receives. */
interface ThreadData {
  readonly counter: SharedArrayBuffer;
  readonly lengths: SharedArrayBuffer;
  readonly slotBytes: SharedArrayBuffer;
  readonly slotSize: number;
  readonly threshold: number;
  readonly checkInterval: number;
  readonly writeToStderr: boolean;
  readonly pid: number;
}

/** A running task as the thread read it from its slot. */
interface BlockedTask {
  readonly messageId: string;
  readonly actorName: string;
}

/** Reports from the thread. `stall` comes only when the thread did not write the warning itself. */
type ThreadReport =
  | { readonly type: "stall"; readonly blockedFor: number; readonly text: string; readonly tasks: readonly BlockedTask[] }
  | { readonly type: "resumed"; readonly blockedFor: number };

/**
 * The thread's code, CommonJS given as a string (`eval`) so that it needs
 * no file of its own. It builds the warning from the slots as soon as it
 * detects the stall, because the tasks may have ended by the time the main
 * thread could read them.
 */
const THREAD_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { writeSync } = require("node:fs");

const counter = new Int32Array(workerData.counter);
const lengths = new Int32Array(workerData.lengths);
const slotBytes = new Uint8Array(workerData.slotBytes);
const decoder = new TextDecoder();
let lastValue = Atomics.load(counter, 0);
let lastChange = Date.now();
let stalled = false;

function readTasks() {
  const tasks = [];
  for (let slot = 0; slot < lengths.length; slot++) {
    const length = Atomics.load(lengths, slot);
    if (length <= 0) {
      continue;
    }
    const offset = slot * workerData.slotSize;
    const copy = slotBytes.slice(offset, offset + length);
    // A slot rewritten during the copy is skipped rather than shown garbled.
    if (Atomics.load(lengths, slot) !== length) {
      continue;
    }
    const text = decoder.decode(copy);
    const separator = text.indexOf("\\u0000");
    tasks.push({ messageId: text.slice(0, separator), actorName: text.slice(separator + 1) });
  }
  return tasks;
}

function describe(blockedFor, tasks) {
  const running = tasks.length === 0
    ? "No task was running, so code outside the actors blocks it."
    : "Running: " + tasks.map((task) => "actor '" + task.actorName + "' (message " + task.messageId + ")").join(", ") + ".";
  return "The event loop has been blocked for " + blockedFor + " ms, more than the " + workerData.threshold + " ms threshold. " + running +
    " While it is blocked this process runs no other task and sends no ack or timer-driven heartbeat;" +
    " move long synchronous work to a worker thread or a child process.";
}

function timestamp(date) {
  const pad = (value, width = 2) => String(value).padStart(width, "0");
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " +
    pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()) + "," + pad(date.getMilliseconds(), 3);
}

function check() {
  const now = Date.now();
  const value = Atomics.load(counter, 0);
  if (value !== lastValue) {
    if (stalled) {
      stalled = false;
      parentPort.postMessage({ type: "resumed", blockedFor: now - lastChange });
    }
    lastValue = value;
    lastChange = now;
    return;
  }

  const blockedFor = now - lastChange;
  if (stalled || blockedFor <= workerData.threshold) {
    return;
  }
  stalled = true;
  const tasks = readTasks();
  const text = describe(blockedFor, tasks);
  if (workerData.writeToStderr) {
    const line = "[" + timestamp(new Date()) + "] [PID " + workerData.pid + "] [melodramatiq.worker.LoopWatchdog] [WARNING] " + text + "\\n";
    try {
      writeSync(2, line);
      return;
    } catch {
      // stderr is closed or full: the main thread logs it once the loop turns.
    }
  }
  parentPort.postMessage({ type: "stall", blockedFor, text, tasks });
}

setInterval(check, workerData.checkInterval);
`;

export class ThreadLoopWatchdog implements LoopWatchdog<number | undefined> {
  private readonly counter: Int32Array;
  private readonly lengths: Int32Array;
  private readonly slotBytes: Uint8Array;
  private readonly freeSlots: number[];
  private readonly encoder = new TextEncoder();
  private readonly timer: NodeJS.Timeout;
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly thread: Thread,
    data: ThreadData,
    private readonly logger: Logger,
  ) {
    this.counter = new Int32Array(data.counter);
    this.lengths = new Int32Array(data.lengths);
    this.slotBytes = new Uint8Array(data.slotBytes);
    this.freeSlots = Array.from({ length: this.lengths.length }, (_, index) => this.lengths.length - 1 - index);
    this.timer = setInterval(() => {
      Atomics.add(this.counter, 0, 1);
    }, data.checkInterval);
    this.timer.unref();
  }

  /** Starts the thread and the main-thread counter. */
  static start(options: LoopWatchdogOptions): ThreadLoopWatchdog {
    const { threshold, slots, logger = getLogger("melodramatiq.worker.LoopWatchdog") } = options;
    const root = getRootLogger();
    const data: ThreadData = {
      counter: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
      lengths: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * slots),
      slotBytes: new SharedArrayBuffer(SLOT_BYTES * slots),
      slotSize: SLOT_BYTES,
      threshold,
      // The counter moves, and the thread checks it, at this interval.
      checkInterval: checkInterval(threshold),
      // NOTE: a ConsoleLogger built with its own `stream` still gets the
      // thread's line on stderr, because the stream is not visible here.
      writeToStderr: root instanceof ConsoleLogger && root.level !== "error" && root.level !== "silent",
      pid: process.pid,
    };

    const thread = new Thread(THREAD_SOURCE, { eval: true, workerData: data, name: "melodramatiq-loop-watchdog" });
    const watchdog = new ThreadLoopWatchdog(thread, data, logger);
    thread.on("message", (report: ThreadReport) => {
      watchdog.onReport(report);
    });
    thread.on("error", (error: Error) => {
      logger.warn({ err: error }, `The event loop watchdog thread failed: ${error.message}. Blocked event loops are not reported from now on.`);
    });
    thread.unref();
    logger.debug({ threshold }, `Started the event loop watchdog thread with a threshold of ${threshold} ms.`);
    return watchdog;
  }

  /**
   * Records a task that starts, so a stall report can name it, and
   * returns its slot. A task that finds every slot taken is missing from
   * reports.
   */
  enter(task: WatchedTask): number | undefined {
    const slot = this.freeSlots.pop();
    if (slot === undefined) {
      return undefined;
    }

    const start = slot * SLOT_BYTES;
    const { written } = this.encoder.encodeInto(`${task.messageId}\u0000${task.actorName}`, this.slotBytes.subarray(start, start + SLOT_BYTES));
    Atomics.store(this.lengths, slot, written);
    return slot;
  }

  /** Clears the slot of a task that ended. */
  leave(slot: number | undefined): void {
    if (slot === undefined) {
      return;
    }
    Atomics.store(this.lengths, slot, 0);
    this.freeSlots.push(slot);
  }

  /** Stops the counter and the thread. Never rejects; safe to call twice. */
  stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping ??= this.thread.terminate().then(
      () => {
        this.logger.debug({}, "Stopped the event loop watchdog.");
      },
      (error: unknown) => {
        this.logger.warn({ err: error }, "Failed to stop the event loop watchdog thread.");
      },
    );
    return this.stopping;
  }

  private onReport(report: ThreadReport): void {
    if (report.type === "stall") {
      this.logger.warn({ blockedFor: report.blockedFor, tasks: report.tasks }, report.text);
      return;
    }
    this.logger.debug({ blockedFor: report.blockedFor }, `The event loop turned again after being blocked for ${report.blockedFor} ms.`);
  }
}
