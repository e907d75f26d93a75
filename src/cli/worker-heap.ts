/**
 * V8 settings of the CLI's worker processes. V8's defaults suit a process
 * that owns the machine. Under a high message rate a worker's young
 * generation grows to 48 MiB, the old generation grows in large steps
 * between collections, and four background threads compile and collect
 * for it, so an idle-looking worker peaks near 75 MiB. A worker keeps
 * little alive between messages, and the CLI already runs one worker
 * process per core. Smaller steps and one background thread therefore cost
 * little and keep it near 57 MiB (docs/benchmarks.md has the figures).
 *
 * A setting the user gave on the command line or in NODE_OPTIONS wins.
 */

import { setFlagsFromString } from "node:v8";

/** Young-generation cap, in MiB per semi-space; Node's documented `--max-semi-space-size`. */
export const WORKER_SEMI_SPACE_MIB = 1;

/**
 * Threads of V8's background pool (concurrent compilation and collection
 * work); Node's documented `--v8-pool-size`, 4 by default. Each thread
 * keeps its own stack and malloc arena, about 3 MiB of a worker's peak.
 */
export const WORKER_V8_POOL_SIZE = 1;

/** Node options the CLI adds to a worker process's `execArgv`, by flag name. */
const WORKER_NODE_OPTIONS: ReadonlyArray<readonly [flag: string, value: number]> = [
  ["max-semi-space-size", WORKER_SEMI_SPACE_MIB],
  ["v8-pool-size", WORKER_V8_POOL_SIZE],
];

/** Old-generation growth per collection, in percent; V8's `--heap-growing-percent`. */
export const WORKER_HEAP_GROWING_PERCENT = 30;

/**
 * Returns the Node options for the worker processes: the main process's own
 * (they keep loaders such as `--import tsx`) without the inspector flags,
 * whose port would clash, plus the young-generation cap and the V8 pool
 * size, each unless the user set it.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env["NODE_OPTIONS"] ?? ""): string[] {
  const inherited = execArgv.filter((arg) => !/^--(?:inspect|debug)(?:-brk|-port|-wait)?(?:=|$)/.test(arg));
  const added = WORKER_NODE_OPTIONS.filter(([flag]) => !userSets(flag, inherited, nodeOptions)).map(([flag, value]) => `--${flag}=${value}`);
  return [...inherited, ...added];
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
