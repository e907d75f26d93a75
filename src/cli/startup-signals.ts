/**
 * The main process's signal handler outside the Supervisor's run: before
 * the worker processes are forked, a SIGINT or SIGTERM means that none
 * should be forked, and the command exits 0. After the run, while the
 * command cleans up, signals are logged and ignored. SIGHUP is ignored in
 * both phases because no worker process exists to reload.
 */

import type { Logger } from "../logger.js";
import type { MainProcessSignal } from "./main-signals.js";

/** Records stop signals until the worker processes start; see the top of this file. */
export class StartupSignals {
  /** The first SIGINT or SIGTERM received before the worker processes started. */
  stopSignal: MainProcessSignal | undefined;
  private phase: "starting" | "exiting" = "starting";
  private logger: Logger | undefined;
  private readonly unlogged: MainProcessSignal[] = [];

  /** Handles a signal that reached the main process outside the Supervisor's run. */
  onSignal(signal: MainProcessSignal): void {
    if (this.phase === "starting" && signal !== "SIGHUP") {
      this.stopSignal ??= signal;
    }

    if (this.logger === undefined) {
      this.unlogged.push(signal);
    } else {
      this.log(signal);
    }
  }

  /** Logs the signals received so far, and every later one, to `logger`. */
  setLogger(logger: Logger): void {
    this.logger = logger;
    for (const signal of this.unlogged.splice(0)) {
      this.log(signal);
    }
  }

  /** Marks the end of start-up: from now on, signals are only logged. */
  finishStartup(): void {
    this.phase = "exiting";
  }

  private log(signal: MainProcessSignal): void {
    const { logger } = this;
    if (logger === undefined) {
      return;
    }

    if (this.phase === "exiting") {
      logger.info({ signal }, `Received ${signal} while exiting; ignoring it.`);
    } else if (signal === "SIGHUP") {
      logger.info({ signal }, "Received SIGHUP before the worker processes started; ignoring it, since they load the current code anyway.");
    } else {
      logger.info({ signal }, `Received ${signal} before the worker processes started; exiting without starting them.`);
    }
  }
}
