/**
 * V8 heap settings of the CLI's worker processes. V8's defaults suit a
 * process that owns the machine: under a high message rate a worker's young
 * generation grows to 48 MiB, and the old generation grows in large steps
 * between collections, so an idle-looking worker peaks near 75 MiB. A
 * worker keeps little alive between messages, so smaller steps cost little
 * CPU and keep it near 58 MiB (docs/benchmarks.md has the figures).
 *
 * A setting the user gave on the command line or in NODE_OPTIONS wins.
 */

import { setFlagsFromString } from "node:v8";

/** Young-generation cap, in MiB per semi-space; Node's documented `--max-semi-space-size`. */
export const WORKER_SEMI_SPACE_MIB = 1;

/** Old-generation growth per collection, in percent; V8's `--heap-growing-percent`. */
export const WORKER_HEAP_GROWING_PERCENT = 30;

/**
 * Returns the Node options for the worker processes: the main process's own
 * (they keep loaders such as `--import tsx`) without the inspector flags,
 * whose port would clash, plus the young-generation cap unless the user set
 * one.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env["NODE_OPTIONS"] ?? ""): string[] {
  const inherited = execArgv.filter((arg) => !/^--(?:inspect|debug)(?:-brk|-port|-wait)?(?:=|$)/.test(arg));
  return userSets("max-semi-space-size", inherited, nodeOptions) ? inherited : [...inherited, `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`];
}

/**
 * Sets the old-generation growth in a worker process, unless the user set
 * it. V8 reads this flag at every collection, so setting it at start-up
 * works. It is not a Node option: in `execArgv` it would stop Node from
 * starting, should a later V8 drop it, while here an unknown flag only
 * prints a line.
 */
export function tuneWorkerHeap(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env["NODE_OPTIONS"] ?? ""): void {
  if (!userSets("heap-growing-percent", execArgv, nodeOptions)) {
    setFlagsFromString(`--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  }
}

/** V8 accepts `-` and `_` alike in flag names. */
function userSets(flag: string, execArgv: readonly string[], nodeOptions: string): boolean {
  const pattern = new RegExp(`^--${flag.replaceAll("-", "[-_]")}(?:=|$)`);
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => pattern.test(arg));
}
