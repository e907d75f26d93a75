/**
 * The main process: forks the worker processes, forwards stop signals to
 * them, replaces them on a reload, and turns their exits into the
 * command's exit code.
 *
 * Forking: the worker processes are forked one at a time, and the main
 * process yields to the event loop after each fork. So a stop signal, a
 * reload or an unexpected exit ends the forking at once, not after the
 * last fork.
 *
 * States:
 * - running: the worker processes are being forked or were forked;
 * - reloading: SIGTERM was sent to the worker processes after SIGHUP or a
 *   watched file change. Once they have all exited, new ones are forked
 *   and the state is running again;
 * - stopping: SIGTERM was sent to the worker processes, after the first
 *   SIGINT or SIGTERM or after one of them exited unexpectedly;
 * - killing: another signal arrived while stopping, so SIGKILL was sent.
 * The run ends once every worker process has exited outside a reload.
 *
 * Exit code: 0 when every worker process stopped with 0 after a stop
 * signal, or died from that SIGTERM before it could handle it. Otherwise
 * the first abnormal exit decides: a worker process's non-zero code, or 1
 * when it died from a signal or exited with 0 on its own; 1 also when a
 * second signal killed the worker processes. A worker process that exits
 * abnormally during a reload is logged and replaced like the others.
 */

import { fork, type ChildProcess } from "node:child_process";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";

import { getLogger } from "../logger.js";
import { EXIT_KILLED, EXIT_OK } from "./exit-codes.js";
import { isReadyMessage, type WorkerProcessConfig } from "./ipc.js";
import { workerExecArgv } from "./worker-heap.js";
import type { HeartbeatKeeper } from "../brokers/redis/heartbeat-keeper.js";
import { HEARTBEAT_VIA_PARENT_VARIABLE, isHeartbeatRequest, type HeartbeatRequest } from "../brokers/redis/heartbeat-request.js";
import type { MainProcessSignal, SignalSource } from "./main-signals.js";

/** Options of a Supervisor. */
export interface SupervisorOptions {
  /** Number of worker processes to fork. */
  readonly processes: number;
  /** The main process's SIGINT, SIGTERM and SIGHUP; the Supervisor handles them while it runs. */
  readonly signals: SignalSource;
  /** Absolute path of the script each worker process runs. */
  readonly entryPath: string;
  /** Returns the settings of the worker process at `index`. */
  readonly configFor: (index: number) => WorkerProcessConfig;
  /** Returns the descriptor that worker processes get as stdout and stderr, read at each fork. @defaultValue the main process's own stdout and stderr */
  readonly outputDescriptor?: () => number | undefined;
  /** Called after the old worker processes of a reload have exited, before the new ones are forked. */
  readonly beforeRespawn?: () => void;
  /** Called with every IPC message of a worker process other than its ReadyMessage. */
  readonly onMessage?: (child: ChildProcess, message: unknown) => void;
  /** Called when a worker process has exited, whatever the reason. */
  readonly onChildExit?: (child: ChildProcess) => void;
}

/** Forks the worker processes and resolves with the exit code once they have all exited. */
export async function superviseWorkerProcesses(options: SupervisorOptions): Promise<number> {
  return new Supervisor(options).run();
}

/** Runs the worker processes; see the top of this file for its states. */
export class Supervisor {
  private readonly logger = getLogger("melodramatiq.MainProcess");
  private readonly children = new Map<number, ChildProcess>();
  private state: "running" | "reloading" | "stopping" | "killing" = "running";
  private exitCode: number | undefined;
  private readyCount = 0;
  /** The heartbeat keeper's module, loaded on the first request. */
  private heartbeatModule: Promise<typeof import("../brokers/redis/heartbeat-keeper.js")> | undefined;
  private readonly heartbeatKeepers = new Map<ChildProcess, HeartbeatKeeper>();
  /** Counts the calls of spawnAll(), so a forking loop that a reload replaced stops. */
  private generation = 0;
  private finish: (code: number) => void = () => undefined;

  constructor(private readonly options: SupervisorOptions) {}

  /** Forks the worker processes and resolves with the command's exit code once they have all exited. */
  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    const unroute = this.options.signals.route((signal) => {
      this.onSignal(signal);
    });

    try {
      void this.spawnAll();
      return await done;
    } finally {
      unroute();
    }
  }

  /**
   * Replaces every worker process: stops them gracefully, waits until they
   * have all exited, then forks new ones. The main process keeps its PID.
   * Ignored unless the worker processes are running, so a reload during a
   * reload or a stop does nothing.
   */
  reload(reason: string): void {
    if (this.state !== "running") {
      this.logger.info({ reason }, `Not reloading workers: they are ${this.state === "reloading" ? "reloading already" : "stopping"}.`);
      return;
    }

    this.logger.info({ reason }, "Reloading workers...");
    this.state = "reloading";
    this.sendStop();
    if (this.children.size === 0) {
      this.respawn();
    }
  }

  /**
   * Forks the worker processes one at a time and yields to the event loop
   * after each fork, so signal handlers and exit events run in between.
   * Stops forking once the state is no longer running or a reload started
   * a new loop. Never rejects: a failed fork is logged and stops the run.
   */
  private async spawnAll(): Promise<void> {
    this.generation += 1;
    const generation = this.generation;
    this.state = "running";
    this.readyCount = 0;

    const total = this.options.processes;
    for (let index = 0; index < total; index += 1) {
      if (this.state !== "running" || this.generation !== generation) {
        this.logger.info({ forked: index, processes: total }, `Stopped forking after ${index} of ${total} worker process(es).`);
        return;
      }

      try {
        this.spawn(index);
      } catch (error) {
        this.logger.error({ err: error }, `Failed to fork worker process ${index}. Shutting down...`);
        this.exitCode ??= EXIT_KILLED;
        this.stop();
        return;
      }
      await yieldToEventLoop();
    }
  }

  private spawn(index: number): void {
    const output = this.options.outputDescriptor?.() ?? "inherit";
    const child = fork(this.options.entryPath, [JSON.stringify(this.options.configFor(index))], {
      stdio: ["inherit", output, output, "ipc"],
      execArgv: workerExecArgv(),
      // This process keeps the Redis heartbeats of its children (see HeartbeatKeeper).
      env: { ...process.env, [HEARTBEAT_VIA_PARENT_VARIABLE]: "1" },
    });
    this.children.set(index, child);
    this.logger.debug({ pid: child.pid }, `Started worker process ${index} with PID ${child.pid ?? "unknown"}.`);

    child.on("message", (message) => {
      if (isReadyMessage(message)) {
        this.onReady(index, child);
      } else if (isHeartbeatRequest(message)) {
        this.keepHeartbeat(child, index, message);
      } else {
        this.options.onMessage?.(child, message);
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

  /**
   * Starts or stops a heartbeat for a child's Redis broker. The keeper's
   * module, and its Redis client, load on the first request, so a CLI on
   * RabbitMQ never loads them.
   */
  private keepHeartbeat(child: ChildProcess, index: number, request: HeartbeatRequest): void {
    this.heartbeatModule ??= import("../brokers/redis/heartbeat-keeper.js");
    this.heartbeatModule.then(
      ({ HeartbeatKeeper }) => {
        // A request that arrives after the child's exit would start a heartbeat that is never stopped.
        if (child.exitCode !== null || child.signalCode !== null) {
          return;
        }
        let keeper = this.heartbeatKeepers.get(child);
        if (keeper === undefined) {
          const created = new HeartbeatKeeper(`worker process ${index} (PID ${child.pid ?? "unknown"})`, getLogger("melodramatiq.cli.HeartbeatKeeper"));
          this.heartbeatKeepers.set(child, created);
          child.once("exit", () => {
            created.stopAll();
            this.heartbeatKeepers.delete(child);
          });
          keeper = created;
        }
        keeper.handle(request);
      },
      (error: unknown) => {
        this.logger.error({ err: error }, `Failed to load the heartbeat keeper for worker process ${index}; its broker's heartbeat stops while its event loop is blocked.`);
      },
    );
  }

  private onReady(index: number, child: ChildProcess): void {
    if (this.children.get(index) !== child) {
      return;
    }

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
    this.options.onChildExit?.(child);

    const status = signal === null ? `code ${code ?? "unknown"}` : `signal ${signal}`;
    const pid = child.pid ?? "unknown";
    if (this.state === "running") {
      this.logger.error({ pid, code, signal }, `Worker process ${index} with PID ${pid} exited unexpectedly (${status}). Shutting down...`);
      this.exitCode ??= abnormalExitCode(code, signal);
      this.stop();
    } else if (code === 0) {
      this.logger.debug({ pid }, `Worker process ${index} with PID ${pid} has stopped.`);
    } else if (signal === "SIGTERM") {
      // A worker process installs its SIGTERM handler before it loads any
      // module, so dying from SIGTERM means it had not started anything yet.
      this.logger.debug({ pid }, `Worker process ${index} with PID ${pid} was stopped by SIGTERM while it was starting.`);
    } else if (this.state === "reloading") {
      this.logger.warn({ pid, code, signal }, `Worker process ${index} with PID ${pid} exited with ${status} while reloading; a new one replaces it.`);
    } else {
      this.logger.warn({ pid, code, signal }, `Worker process ${index} with PID ${pid} exited with ${status} while stopping.`);
      this.exitCode ??= abnormalExitCode(code, signal);
    }

    if (this.children.size > 0) {
      return;
    }
    if (this.state === "reloading") {
      this.respawn();
    } else {
      this.finish(this.exitCode ?? EXIT_OK);
    }
  }

  private respawn(): void {
    try {
      this.options.beforeRespawn?.();
    } catch (error) {
      this.logger.error({ err: error }, "Failed to prepare the reload; starting the new worker processes anyway.");
    }

    this.logger.info({}, `Starting ${this.options.processes} new worker process(es).`);
    void this.spawnAll();
  }

  private onSignal(signal: MainProcessSignal): void {
    switch (this.state) {
      case "running":
        if (signal === "SIGHUP") {
          this.reload("SIGHUP");
        } else {
          this.stop();
        }
        return;
      case "reloading":
        if (signal === "SIGHUP") {
          this.logger.info({}, "Received SIGHUP while reloading; the new worker processes load the current code anyway.");
        } else {
          // The worker processes already received SIGTERM for the reload;
          // another one would make them exit at once, so none is sent.
          this.logger.info({}, `Received ${signal} while reloading; stopping instead of starting new worker processes.`);
          this.state = "stopping";
        }
        return;
      case "stopping":
      case "killing":
        this.killChildren(signal);
        return;
    }
  }

  private stop(): void {
    this.state = "stopping";
    this.sendStop();
    // No exit event will come to end the run, e.g. when the first fork failed.
    if (this.children.size === 0) {
      this.finish(this.exitCode ?? EXIT_OK);
    }
  }

  private sendStop(): void {
    if (this.children.size > 0) {
      this.logger.info({}, "Sending signal 'SIGTERM' to subprocesses...");
      this.sendToChildren("SIGTERM");
    }
  }

  private killChildren(signal: MainProcessSignal): void {
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
