/**
 * The main process's handlers for SIGINT, SIGTERM and SIGHUP. A Node
 * process without a handler for one of them dies from it (exit status 143
 * for SIGTERM) and leaves nothing stopped, so bin.ts installs these before
 * it loads the rest of the command. This module imports nothing, so it
 * loads in a few milliseconds.
 *
 * Handlers form a stack: the last one routed receives every signal until
 * it is unrouted. Signals that arrive while no handler is routed are kept
 * and delivered to the next handler that is routed.
 */

export const MAIN_PROCESS_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** A signal that the main process handles. */
export type MainProcessSignal = (typeof MAIN_PROCESS_SIGNALS)[number];

/** A handler for the main process's signals. */
export type MainProcessSignalHandler = (signal: MainProcessSignal) => void;

/** The source of the main process's signals. Tests pass their own. */
export interface SignalSource {
  /**
   * Routes every later signal to `handler` until the returned function is
   * called, first delivering the signals that arrived while no handler was
   * routed.
   */
  route(handler: MainProcessSignalHandler): () => void;
}

/** The process's SIGINT, SIGTERM and SIGHUP handlers; see the top of this file. */
export class MainProcessSignals implements SignalSource {
  private readonly handlers: MainProcessSignalHandler[] = [];
  private readonly pending: MainProcessSignal[] = [];
  private readonly listeners = new Map<MainProcessSignal, () => void>();

  private constructor() {}

  /** Installs the handlers on `process`. */
  static install(): MainProcessSignals {
    const signals = new MainProcessSignals();
    for (const signal of MAIN_PROCESS_SIGNALS) {
      const listener = (): void => {
        signals.deliver(signal);
      };
      signals.listeners.set(signal, listener);
      process.on(signal, listener);
    }
    return signals;
  }

  route(handler: MainProcessSignalHandler): () => void {
    this.handlers.push(handler);
    for (const signal of this.pending.splice(0)) {
      handler(signal);
    }

    return () => {
      const position = this.handlers.lastIndexOf(handler);
      if (position !== -1) {
        this.handlers.splice(position, 1);
      }
    };
  }

  /** Removes the handlers from `process`, so these signals have their default action again. */
  uninstall(): void {
    for (const [signal, listener] of this.listeners) {
      process.off(signal, listener);
    }
    this.listeners.clear();
  }

  private deliver(signal: MainProcessSignal): void {
    const handler = this.handlers.at(-1);
    if (handler === undefined) {
      this.pending.push(signal);
      return;
    }
    handler(signal);
  }
}
