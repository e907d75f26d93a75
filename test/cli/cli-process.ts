/**
 * Runs the `melodramatiq` command from its TypeScript sources as a real
 * process (`node --import tsx src/cli/bin.ts ...`) and watches its output.
 *
 * Each run gets its own process group, and a hard timeout kills the whole
 * group, so a hung CLI or an orphaned worker process fails the test instead
 * of hanging it.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root; `--import tsx` resolves tsx from here. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURES = join(REPO_ROOT, "test", "cli", "fixtures");
const BIN = join(REPO_ROOT, "src", "cli", "bin.ts");

/** How a CLI run ended. */
export interface CliExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface CliRun {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stderr, or rejects after `timeoutMs` with the output so far. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves once stderr matches `pattern` `count` times; returns all matches. */
  waitForStderrCount(pattern: RegExp, count: number, timeoutMs?: number): Promise<RegExpMatchArray[]>;
  /** Resolves when the CLI exits, or rejects after `timeoutMs` with the output so far. */
  waitForExit(timeoutMs?: number): Promise<CliExit>;
  signal(signal: NodeJS.Signals): void;
  /** Kills the CLI's process group (the CLI and its worker processes) with SIGKILL, if still running. */
  killGroup(): void;
}

export interface CliRunOptions {
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Milliseconds after which the process group is killed and waits fail. @defaultValue 60000 */
  readonly hardTimeoutMs?: number;
}

/** Starts `melodramatiq ...args` in the repository root. */
export function startCli(args: readonly string[], options: CliRunOptions = {}): CliRun {
  return startNode(["--import", "tsx", BIN, ...args], options);
}

/** Starts `node ...args`, with the same watching as startCli(); used for a compiled copy of the CLI. */
export function startNode(args: readonly string[], options: CliRunOptions = {}): CliRun {
  const child = spawn(process.execPath, [...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  if (child.pid === undefined) {
    throw new Error(`Failed to start node ${args.join(" ")}`);
  }

  const pid = child.pid;
  let stdout = "";
  let stderr = "";
  let exit: CliExit | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of listeners) {
      listener();
    }
  };

  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    notify();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    notify();
  });
  child.on("exit", (code, signal) => {
    exit = { code, signal };
    notify();
  });
  // "close" comes after the last output of the CLI and of every worker
  // process, which share its stderr; no more output can match after it.
  let closed = false;
  child.on("close", () => {
    closed = true;
    notify();
  });

  const killGroup = (): void => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // The group is gone already.
    }
  };
  const hardTimeout = setTimeout(killGroup, options.hardTimeoutMs ?? 60_000);
  hardTimeout.unref();
  child.on("exit", () => {
    clearTimeout(hardTimeout);
  });

  const describe = (): string => `exit=${JSON.stringify(exit)}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  /**
   * Resolves with `check()`'s first defined result, re-checked on every
   * output or exit event. Output checks fail early once all output is in.
   */
  const waitUntil = <T>(check: () => T | undefined, what: string, timeoutMs: number, isOutputCheck = true): Promise<T> =>
    new Promise((resolve, reject) => {
      const attempt = (): void => {
        const result = check();
        if (result !== undefined) {
          finish();
          resolve(result);
        } else if (isOutputCheck && closed) {
          finish();
          reject(new Error(`The CLI and its worker processes exited without ${what}.\n${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.\n${describe()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        listeners.delete(attempt);
      };
      listeners.add(attempt);
      attempt();
    });

  return {
    child,
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStderr: (pattern, timeoutMs = 30_000) => waitUntil(() => pattern.exec(stderr) ?? undefined, `stderr to match ${pattern}`, timeoutMs),
    waitForStderrCount: (pattern, count, timeoutMs = 30_000) => {
      const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`);
      return waitUntil(
        () => {
          const matches = [...stderr.matchAll(global)];
          return matches.length >= count ? matches : undefined;
        },
        `${count} matches of ${pattern} in stderr`,
        timeoutMs,
      );
    },
    waitForExit: (timeoutMs = 30_000) => waitUntil(() => exit, "the CLI to exit", timeoutMs, false),
    signal: (signal) => {
      process.kill(pid, signal);
    },
    killGroup,
  };
}

/** Matches a worker process's ready line; group 1 is its PID. */
export const READY_LINE = /\[PID (\d+)\] \[melodramatiq\.WorkerProcess\(\d+\)\] \[INFO\] Worker process is ready for action\./;

/** Reports whether a process exists and is not a zombie (Linux /proc, else signal 0). */
export function isProcessAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state follows the parenthesised command name, which may contain spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** Polls `condition` every 50 ms until it returns true; rejects with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Returns the lines of a file, or [] when it does not exist yet. */
export function readLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter((line) => line !== "");
  } catch {
    return [];
  }
}

/** Reports whether any process, zombies included, is left in the process group `pgid`. */
export function isProcessGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGHUP's bit in the SigCgt mask of /proc/PID/status (bit n - 1 for signal n). */
const SIGHUP_CAUGHT = 1n;

/**
 * Resolves once the CLI's process `pid` catches SIGHUP, which it starts to
 * do in bin.ts together with SIGINT and SIGTERM. Node catches SIGINT and
 * SIGTERM itself from its first instant (to restore the terminal before it
 * dies), so only SIGHUP shows that the CLI's handlers are in place.
 * Returns false when /proc is missing (not Linux). Polls every millisecond,
 * for at most `timeoutMs`.
 */
export async function waitForCliSignalHandlers(pid: number, timeoutMs = 15_000): Promise<boolean> {
  if (!existsSync("/proc/self/status")) {
    return false;
  }

  const deadline = Date.now() + timeoutMs;
  while (Date.now() <= deadline) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch (error) {
      throw new Error(`Process ${pid} exited before it caught SIGHUP.`, { cause: error });
    }

    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (mask !== undefined && (BigInt(`0x${mask}`) & SIGHUP_CAUGHT) !== 0n) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for process ${pid} to catch SIGHUP.`);
}
