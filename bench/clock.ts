/**
 * Clocks shared by the benchmark's processes. `process.hrtime` reads
 * CLOCK_MONOTONIC on Linux, which every process on the machine shares, so
 * a time taken in a producer process can be subtracted from one taken in a
 * worker process.
 */

/** Milliseconds on the machine-wide monotonic clock, with microsecond resolution. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** Peak resident set size of this process since it started, in MiB. */
export function peakRssMiB(): number {
  // resourceUsage().maxRSS is in KiB.
  return process.resourceUsage().maxRSS / 1024;
}

/** CPU time (user and system) this process has used since `since`, in ms; pass `process.cpuUsage()` taken at the start. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
