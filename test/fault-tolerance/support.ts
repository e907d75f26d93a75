/**
 * Shared pieces of the fault-tolerance tests: child processes that print
 * JSON events, bounded waits, and unique names.
 */

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, where `--import tsx` resolves tsx. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURES = join(REPO_ROOT, "test", "fault-tolerance", "fixtures");

/** Returns a name no other test uses, e.g. `ft_kill_3f9a1c2b`. */
export function uniqueName(label: string): string {
  return `ft_${label}_${randomBytes(4).toString("hex")}`;
}

/** One line a child process printed on stdout, parsed as JSON. */
export type ChildEvent = Record<string, unknown> & { event: string };

/** A child process that prints one JSON event per line on stdout. */
export interface EventChild {
  readonly process: ChildProcessWithoutNullStreams;
  readonly events: ChildEvent[];
  stderr(): string;
  /** Resolves with the first event that `match` accepts, waiting at most `timeout` ms. */
  waitForEvent(what: string, match: (event: ChildEvent) => boolean, timeout?: number): Promise<ChildEvent>;
  /** Resolves with the exit code and signal, waiting at most `timeout` ms. */
  waitForExit(timeout?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills the process with SIGKILL if it still runs. */
  kill(): void;
}

export interface SpawnOptions {
  readonly env?: Record<string, string>;
  /** Extra Node options placed before the script, e.g. `--unhandled-rejections=strict`. */
  readonly nodeOptions?: readonly string[];
}

/** Starts `node --import tsx <fixture>` from the repository root. */
export function spawnFixture(fixture: string, options: SpawnOptions = {}): EventChild {
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), "--import", "tsx", join(FIXTURES, fixture)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });

  const events: ChildEvent[] = [];
  let stderr = "";
  let partial = "";
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) {
      listener();
    }
  };

  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() !== "") {
        events.push(parseEvent(line));
      }
    }
    notify();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    notify();
  });
  child.on("exit", (code, signal) => {
    exit = { code, signal };
    notify();
  });

  const describe = (): string => `exit=${JSON.stringify(exit)}\n--- events ---\n${events.map((event) => JSON.stringify(event)).join("\n")}\n--- stderr ---\n${stderr}`;

  const waitUntil = <T>(check: () => T | undefined, what: string, timeout: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const attempt = (): void => {
        const result = check();
        if (result !== undefined) {
          finish();
          resolve(result);
        } else if (exit !== undefined && what !== "exit") {
          finish();
          reject(new Error(`The child exited before ${what}.\n${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`Timed out after ${timeout} ms waiting for ${what}.\n${describe()}`));
      }, timeout);
      const finish = (): void => {
        clearTimeout(timer);
        listeners.delete(attempt);
      };
      listeners.add(attempt);
      attempt();
    });

  return {
    process: child,
    events,
    stderr: () => stderr,
    waitForEvent: (what, match, timeout = 20_000) => waitUntil(() => events.find(match), what, timeout),
    waitForExit: (timeout = 20_000) => waitUntil(() => exit, "exit", timeout),
    kill: () => {
      if (exit === undefined) {
        child.kill("SIGKILL");
      }
    },
  };
}

function parseEvent(line: string): ChildEvent {
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value === "object" && value !== null && typeof (value as { event?: unknown }).event === "string") {
      return value as ChildEvent;
    }
  } catch {
    // Not JSON: kept as an event below so the test output shows it.
  }
  return { event: "output", line };
}

/** Polls `check` every 20 ms until it returns true; fails with `what` after `timeout` ms. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${what}.`);
    }
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
