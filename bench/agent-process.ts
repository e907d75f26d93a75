/**
 * The parent's handle on one agent process: forks it, sends it phases and
 * waits for its replies, each wait bounded by a timeout.
 */

import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

import { HeartbeatKeeper } from "../src/brokers/redis/heartbeat-keeper.js";
import { HEARTBEAT_VIA_PARENT_VARIABLE, isHeartbeatRequest, type HeartbeatRequest } from "../src/brokers/redis/heartbeat-request.js";
import { workerExecArgv } from "../src/cli/worker-heap.js";
import { getLogger } from "../src/logger.js";
import type { AgentSpec, ChildMessage, ParentMessage, PhaseResult } from "./protocol.js";

const CHILD_SCRIPT = fileURLToPath(new URL("./child.js", import.meta.url));
/** Milliseconds an agent gets to connect and to close. */
const SETUP_TIMEOUT = 30_000;

type Waiter = {
  readonly accepts: (message: ChildMessage) => boolean;
  readonly resolve: (message: ChildMessage) => void;
  readonly reject: (error: Error) => void;
};

export class AgentProcess {
  /** Messages processed so far, from the latest progress report. */
  processed = 0;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<Waiter>();
  private exitError: Error | undefined;
  private readonly heartbeats: HeartbeatKeeper;

  private constructor(
    readonly label: string,
    spec: AgentSpec,
  ) {
    // melodramatiq agents run as the CLI runs its worker processes, so the
    // figures are those of `melodramatiq` workers: with the same heap
    // settings (the child applies the rest), and with this process keeping
    // their Redis heartbeats. BullMQ agents run with Node's defaults, as
    // BullMQ's users run them.
    const melodramatiq = spec.library === "melodramatiq";
    const execArgv = melodramatiq ? workerExecArgv() : process.execArgv;
    const env = melodramatiq ? { ...process.env, [HEARTBEAT_VIA_PARENT_VARIABLE]: "1" } : process.env;
    this.child = fork(CHILD_SCRIPT, [JSON.stringify(spec)], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv, env });
    this.heartbeats = new HeartbeatKeeper(`agent ${label}`, getLogger("melodramatiq.bench.HeartbeatKeeper"));
    this.child.on("message", (message: ChildMessage | HeartbeatRequest) => {
      if (isHeartbeatRequest(message)) {
        this.heartbeats.handle(message);
      } else {
        this.onMessage(message);
      }
    });
    this.child.on("exit", (code, signal) => {
      this.heartbeats.stopAll();
      this.exitError ??= new Error(`Agent ${this.label} exited (code ${String(code)}, signal ${String(signal)}) before it finished.`);
      this.rejectAll(this.exitError);
    });
  }

  /** Forks an agent and waits until it has connected. */
  static async start(label: string, spec: AgentSpec): Promise<AgentProcess> {
    const agent = new AgentProcess(label, spec);
    try {
      await agent.waitFor("ready", SETUP_TIMEOUT);
    } catch (error) {
      agent.kill();
      throw error;
    }
    return agent;
  }

  /** The error that ended the agent (it failed, exited or was asked to exit), or undefined while it runs. */
  get failure(): Error | undefined {
    return this.exitError;
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  /** Sends a phase that ends with "done" and returns its result. */
  async run(message: ParentMessage, timeout: number): Promise<PhaseResult> {
    const reply = this.waitFor("done", timeout);
    this.send(message);
    const done = await reply;
    if (done.type !== "done") {
      throw new Error(`Agent ${this.label} replied ${done.type} instead of done.`);
    }
    return done.result;
  }

  /** Resolves with the next message of `type`; rejects on a "failed" message, an exit or the timeout. */
  waitFor(type: ChildMessage["type"], timeout: number): Promise<ChildMessage> {
    if (this.exitError !== undefined) {
      return Promise.reject(this.exitError);
    }

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`Agent ${this.label} sent no '${type}' within ${timeout} ms; raise BENCH_PHASE_TIMEOUT or lower the message counts.`));
      }, timeout);
      const waiter: Waiter = {
        accepts: (message) => message.type === type,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Asks the agent to close its connections and exit, and waits for the exit; kills it if it takes too long. */
  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return;
    }

    const exited = new Promise<void>((resolve) => {
      this.child.once("exit", () => {
        resolve();
      });
    });
    this.exitError = new Error(`Agent ${this.label} was asked to exit.`);
    if (this.child.connected) {
      this.send({ type: "exit" });
    }
    const timer = setTimeout(() => {
      this.kill();
    }, SETUP_TIMEOUT);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
    }
  }

  private onMessage(message: ChildMessage): void {
    if (message.type === "progress") {
      this.processed = message.processed;
      return;
    }
    if (message.type === "failed") {
      this.exitError = new Error(`Agent ${this.label} failed:\n${message.error}`);
      this.rejectAll(this.exitError);
      return;
    }

    for (const waiter of this.waiters) {
      if (waiter.accepts(message)) {
        this.waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
  }

  private rejectAll(error: Error): void {
    for (const waiter of this.waiters) {
      waiter.reject(error);
    }
    this.waiters.clear();
  }
}
