/** Bounded waits shared by the middleware and worker tests. */

/** Polls `check` every 10 ms until it returns true; fails with `what` after `timeout` ms. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${what}.`);
    }
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Blocks the event loop for `ms` milliseconds, as a CPU-bound actor does. */
export function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Busy loop on purpose.
  }
}

/** A promise that never settles, as an actor stuck on a lost connection returns. */
export function never(): Promise<never> {
  return new Promise<never>(() => {});
}
