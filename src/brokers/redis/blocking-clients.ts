/** Connections for the blocking commands of the Redis results and rate-limiter backends. */

import type { BackendRedisClient } from "./backend-client.js";
import { quitClient } from "./client.js";

/** Idle connections kept open for reuse. More are opened while more commands block at once. */
const MAX_IDLE_CLIENTS = 4;

/**
 * Gives each blocking command in progress (BRPOPLPUSH) a connection of its
 * own, because a blocking command stalls every later command on its
 * connection. Connections are opened with `open` on demand and kept for
 * reuse, up to MAX_IDLE_CLIENTS idle ones.
 */
export class BlockingClientPool {
  private readonly idle: BackendRedisClient[] = [];
  private readonly busy = new Set<BackendRedisClient>();

  constructor(private readonly open: () => BackendRedisClient) {}

  /** Runs `wait` on a connection that no other command uses until it ends. A connection whose command threw is closed, not reused. */
  async run<T>(wait: (client: BackendRedisClient) => Promise<T>): Promise<T> {
    const client = this.idle.pop() ?? this.open();
    this.busy.add(client);

    let reusable = false;
    try {
      const result = await wait(client);
      reusable = true;
      return result;
    } finally {
      this.release(client, reusable);
    }
  }

  /**
   * Empties the pool and returns its connections. The commands on `busy`
   * ones fail once the caller cuts them, and the pool opens new
   * connections when used again.
   */
  detach(): { busy: BackendRedisClient[]; idle: BackendRedisClient[] } {
    const busy = [...this.busy];
    this.busy.clear();
    return { busy, idle: this.idle.splice(0) };
  }

  private release(client: BackendRedisClient, reusable: boolean): void {
    if (!this.busy.delete(client)) {
      // close() took it over already.
      return;
    }

    if (reusable && this.idle.length < MAX_IDLE_CLIENTS) {
      this.idle.push(client);
      return;
    }
    void quitClient(client);
  }
}
