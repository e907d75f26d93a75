/**
 * The main process: forks the worker processes, forwards stop signals to
 * them and turns their exits into the command's exit code.
 *
 * States:
 * - running: the worker processes were forked;
 * - stopping: SIGTERM was sent to the worker processes, after the first
 *   SIGINT, SIGTERM or SIGHUP or after one of them exited unexpectedly;
 * - killing: another signal arrived while stopping, so SIGKILL was sent.
 * The run ends once every worker process has exited.
 *
 * Exit code: 0 when every worker process stopped with 0 after a stop
 * signal, or died from that SIGTERM before it could handle it. Otherwise
 * the first abnormal exit decides: a worker process's non-zero code, or 1
 * when it died from a signal or exited with 0 on its own; 1 also when a
 * second signal killed the worker processes.
 */

import { fork, type ChildProcess } from "node:child_process";

import { getLogger } from "../logger.js";
import { EXIT_KILLED, EXIT_OK } from "./exit-codes.js";
import { isReadyMessage, type WorkerProcessConfig } from "./ipc.js";

/** Options of superviseWorkerProcesses(). */
export interface SupervisorOptions {
  /** Number of worker processes to fork. */
  readonly processes: number;
  /** Absolute path of the script each worker process runs. */
  readonly entryPath: string;
  /** Returns the settings of the worker process at `index`. */
  readonly configFor: (index: number) => WorkerProcessConfig;
}

const stopSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type StopSignal = (typeof stopSignals)[number];

/** Forks the worker processes and resolves with the exit code once they have all exited. */
export async function superviseWorkerProcesses(options: SupervisorOptions): Promise<number> {
  return new Supervisor(options).run();
}

class Supervisor {
  private readonly logger = getLogger("melodramatiq.MainProcess");
  private readonly children = new Map<number, ChildProcess>();
  private state: "running" | "stopping" | "killing" = "running";
  private exitCode: number | undefined;
  private readyCount = 0;
  private finish: (code: number) => void = () => undefined;

  constructor(private readonly options: SupervisorOptions) {}

  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    const handlers = stopSignals.map((signal) => {
      const handler = (): void => {
        this.onSignal(signal);
      };
      process.on(signal, handler);
      return { signal, handler };
    });

    try {
      for (let index = 0; index < this.options.processes; index += 1) {
        this.spawn(index);
      }
      return await done;
    } finally {
      for (const { signal, handler } of handlers) {
        process.off(signal, handler);
      }
    }
  }

  private spawn(index: number): void {
    const child = fork(this.options.entryPath, [JSON.stringify(this.options.configFor(index))], {
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      execArgv: inheritableExecArgv(),
    });
    this.children.set(index, child);
    this.logger.debug({ pid: child.pid }, `Started worker process ${index} with PID ${child.pid ?? "unknown"}.`);

    child.on("message", (message) => {
      if (isReadyMessage(message)) {
        this.onReady(index, child);
      }
    });
    child.once("exit", (code, signal) => {
      this.onExit(index, child, code, signal);
    });
    child.on("error", (error) => {
      this.logger.error({ err: error, pid: child.pid }, `Worker process ${index} failed: ${error.message}`);
      // A process that never started emits no "exit" event, or not reliably.
      if (child.pid === undefined) {
        this.onExit(index, child, null, null);
      }
    });
  }

  private onReady(index: number, child: ChildProcess): void {
    this.readyCount += 1;
    this.logger.debug({ pid: child.pid }, `Worker process ${index} with PID ${child.pid ?? "unknown"} is ready.`);
    if (this.readyCount === this.options.processes) {
      this.logger.debug({}, `All ${this.options.processes} worker processes are ready.`);
    }
  }

  private onExit(index: number, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.children.get(index) !== child) {
      return;
    }
    this.children.delete(index);

    const status = signal === null ? `code ${code ?? "unknown"}` : `signal ${signal}`;
    const pid = child.pid ?? "unknown";
    if (this.state === "running") {
      this.logger.error({ pid, code, signal }, `Worker process ${index} with PID ${pid} exited unexpectedly (${status}). Shutting down...`);
      this.exitCode ??= abnormalExitCode(code, signal);
      this.stopChildren();
    } else if (code === 0) {
      this.logger.debug({ pid }, `Worker process ${index} with PID ${pid} has stopped.`);
    } else if (signal === "SIGTERM") {
      // A worker process installs its SIGTERM handler before it loads any
      // module, so dying from SIGTERM means it had not started anything yet.
      this.logger.debug({ pid }, `Worker process ${index} with PID ${pid} was stopped by SIGTERM while it was starting.`);
    } else {
      this.logger.warn({ pid, code, signal }, `Worker process ${index} with PID ${pid} exited with ${status} while stopping.`);
      this.exitCode ??= abnormalExitCode(code, signal);
    }

    if (this.children.size === 0) {
      this.finish(this.exitCode ?? EXIT_OK);
    }
  }

  private onSignal(signal: StopSignal): void {
    if (this.state !== "running") {
      this.killChildren(signal);
      return;
    }

    if (signal === "SIGHUP") {
      // NOTE: Python Dramatiq reloads its workers on SIGHUP; until reloading
      // exists here, SIGHUP stops the command like SIGTERM does.
      this.logger.info({}, "Received SIGHUP; reloading is not implemented yet, so the worker processes stop.");
    }
    this.stopChildren();
  }

  private stopChildren(): void {
    this.state = "stopping";
    if (this.children.size > 0) {
      this.logger.info({}, "Sending signal 'SIGTERM' to subprocesses...");
      this.sendToChildren("SIGTERM");
    }
  }

  private killChildren(signal: StopSignal): void {
    this.state = "killing";
    this.exitCode ??= EXIT_KILLED;
    this.logger.warn({}, `Received ${signal} while stopping; killing the worker processes with SIGKILL.`);
    this.sendToChildren("SIGKILL");
  }

  private sendToChildren(signal: NodeJS.Signals): void {
    for (const [index, child] of this.children) {
      try {
        child.kill(signal);
      } catch (error) {
        this.logger.error({ err: error, pid: child.pid }, `Failed to send ${signal} to worker process ${index}.`);
      }
    }
  }
}

/** Returns the exit code for a worker process that exited when it was not asked to. */
function abnormalExitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null || code === null || code === 0) {
    return EXIT_KILLED;
  }
  return code;
}

/**
 * Returns the main process's Node options for the worker processes (they
 * keep loaders such as `--import tsx`), without the inspector flags, whose
 * port would clash.
 */
function inheritableExecArgv(): string[] {
  return process.execArgv.filter((arg) => !/^--(?:inspect|debug)(?:-brk|-port|-wait)?(?:=|$)/.test(arg));
}
