/**
 * Fixtures shared by the rate-limit tests: the same checks run against the
 * in-memory backend and the real Redis server, each test under a key prefix
 * of its own, deleted afterwards.
 */

import { randomUUID } from "node:crypto";

import { Redis } from "ioredis";

import type { RateLimiter, RateLimiterBackend, StoredKeyState } from "../../src/rate-limits/index.js";
import { StubRateLimiterBackend } from "../../src/rate-limits/index.js";
import { RedisRateLimiterBackend, type RedisRateLimiterBackendOptions } from "../../src/rate-limits/backends/redis.js";

export const REDIS_URL = "redis://127.0.0.1:6379/0";

export type BackendKind = "stub" | "redis";
export const BACKEND_KINDS: readonly BackendKind[] = ["stub", "redis"];

/** A clock that moves only when a test sets or advances it. */
export class FakeClock {
  constructor(public now: number) {}

  /** The function limiters and the stub backend call. */
  readonly read = (): number => this.now;

  advance(ms: number): void {
    this.now += ms;
  }
}

export interface BackendFixture {
  readonly kind: BackendKind;
  readonly backend: RateLimiterBackend;
  /** Prefix of every key this test uses; `cleanup()` deletes keys that start with it. */
  readonly prefix: string;
  /**
   * Returns another backend on the same storage, as a second process would
   * have: a new Redis backend with its own connections, or, for the stub,
   * the same instance, since memory cannot be shared.
   */
  peer(options?: RedisRateLimiterBackendOptions): RateLimiterBackend;
  /** Reads every key under the prefix, keyed by its name without the prefix. */
  snapshot(): Promise<Map<string, StoredKeyState>>;
  cleanup(): Promise<void>;
}

/** Options of `createBackendFixture`. */
export interface FixtureOptions {
  /** TTL clock of the stub backend; Redis always uses its own. */
  stubClock?: () => number;
  /** Options of the Redis backends the fixture creates. */
  redisOptions?: RedisRateLimiterBackendOptions;
}

export function createBackendFixture(kind: BackendKind, options: FixtureOptions = {}): BackendFixture {
  const prefix = `melo-test-rl-${randomUUID()}:`;
  if (kind === "stub") {
    return createStubFixture(prefix, options);
  }
  return createRedisFixture(prefix, options);
}

function createStubFixture(prefix: string, options: FixtureOptions): BackendFixture {
  const backend = new StubRateLimiterBackend(options.stubClock === undefined ? {} : { clock: options.stubClock });
  return {
    kind: "stub",
    backend,
    prefix,
    peer: () => backend,
    async snapshot() {
      const state = new Map<string, StoredKeyState>();
      for (const key of backend.keys().filter((name) => name.startsWith(prefix)).sort()) {
        const entry = backend.inspect(key);
        if (entry !== null) {
          state.set(key.slice(prefix.length), entry);
        }
      }
      return state;
    },
    async cleanup() {
      await backend.close();
    },
  };
}

function createRedisFixture(prefix: string, options: FixtureOptions): BackendFixture {
  const raw = new Redis(REDIS_URL, { lazyConnect: true });
  const backends = [new RedisRateLimiterBackend({ url: REDIS_URL, ...options.redisOptions })];
  const [backend] = backends as [RedisRateLimiterBackend];

  return {
    kind: "redis",
    backend,
    prefix,
    peer(peerOptions) {
      const peer = new RedisRateLimiterBackend({ url: REDIS_URL, ...options.redisOptions, ...peerOptions });
      backends.push(peer);
      return peer;
    },
    async snapshot() {
      return readRedisState(raw, prefix);
    },
    async cleanup() {
      try {
        const keys = await scanKeys(raw, prefix);
        if (keys.length > 0) {
          await raw.del(...keys);
        }
      } finally {
        await Promise.all(backends.map((each) => each.close()));
        await raw.quit();
      }
    },
  };
}

async function scanKeys(raw: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  // SCAN ends when the cursor comes back to 0; the cap only guards against a broken server.
  for (let round = 0; round < 10_000; round += 1) {
    const [next, batch] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
    if (cursor === "0") {
      return [...new Set(keys)].sort();
    }
  }
  throw new Error(`SCAN for keys under ${prefix} did not finish within 10000 rounds.`);
}

async function readRedisState(raw: Redis, prefix: string): Promise<Map<string, StoredKeyState>> {
  const state = new Map<string, StoredKeyState>();
  for (const key of await scanKeys(raw, prefix)) {
    const [type, pttl] = await Promise.all([raw.type(key), raw.pttl(key)]);
    const name = key.slice(prefix.length);
    if (type === "string") {
      state.set(name, { type: "string", value: (await raw.get(key)) ?? "", pttl });
    } else if (type === "list") {
      state.set(name, { type: "list", value: await raw.lrange(key, 0, -1), pttl });
    } else if (type !== "none") {
      throw new Error(`Key ${key} has unexpected type ${type}.`);
    }
  }
  return state;
}

/** Resolves after `ms` real milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once `condition()` holds, polling every few ms; rejects with
 * `description` when it still does not after `timeout` ms.
 */
export async function waitFor(condition: () => boolean, description: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for ${description}.`);
    }
    await sleep(5);
  }
}

/** An acquisition held open until `exit()`, so a test can look at the state while a holder is inside. */
export interface Holder {
  /** True once the function runs under the limit, false when the limiter was full. */
  readonly entered: Promise<boolean>;
  /** Lets the function return and resolves once `acquire()` has released. */
  exit(): Promise<void>;
}

/** A promise with its resolve function, as Promise.withResolvers (Node 22) returns. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

export function hold(limiter: RateLimiter): Holder {
  const { promise: gate, resolve: openGate } = deferred<undefined>();
  const { promise: inside, resolve: signalInside } = deferred<true>();
  const done = limiter.acquire(
    async () => {
      signalInside(true);
      await gate;
    },
    { raiseOnFailure: false },
  );

  return {
    entered: Promise.race([inside, done.then(() => false)]),
    async exit() {
      openGate(undefined);
      await done;
    },
  };
}
