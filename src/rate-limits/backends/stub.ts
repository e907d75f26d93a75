/**
 * An in-memory rate-limiter backend for tests and single-process apps. It
 * models the Redis data the Redis backend writes (string counters, event
 * lists, millisecond TTLs), so a test can check the same state.
 */

import { ConnectionClosedError } from "../../errors.js";
import {
  EVENT_VALUE,
  RateLimiterBackend,
  parseCounter,
  validateCounterUpdate,
  validateInteger,
  validateTtl,
  validateWaitTimeout,
} from "../backend.js";
import { RateLimiterBackendError } from "../errors.js";

/** Options of StubRateLimiterBackend. */
export interface StubRateLimiterBackendOptions {
  /**
   * Returns the current UNIX time in ms; TTLs are measured with it. Tests
   * pass a fake clock (the same one as the limiters') to expire keys without
   * waiting. Wait timeouts always use real timers. @defaultValue `Date.now`
   */
  clock?: () => number;
}

/** The type, value and remaining TTL of a key, as Redis reports them. `pttl` is in ms, or -1 when the key has no TTL. */
export type StoredKeyState =
  | { readonly type: "string"; readonly value: string; readonly pttl: number }
  | { readonly type: "list"; readonly value: readonly string[]; readonly pttl: number };

type Entry =
  | { readonly type: "string"; value: string; expiresAt: number | undefined }
  | { readonly type: "list"; readonly items: string[]; expiresAt: number | undefined };

interface Waiter {
  /** Called with the list when an event arrives, or with an error when the backend closes. */
  readonly wake: (items: string[] | Error) => void;
}

/**
 * Keeps counters and event lists in a Map. Operations run synchronously on
 * the event loop, so each one is atomic. Waits resolve as soon as an event
 * is pushed and honour their timeout to the millisecond, where Redis
 * rounds it down to whole seconds.
 */
export class StubRateLimiterBackend extends RateLimiterBackend {
  private readonly clock: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(options: StubRateLimiterBackendOptions = {}) {
    super();
    this.clock = options.clock ?? Date.now;
  }

  override async add(key: string, value: number, ttl: number): Promise<boolean> {
    validateInteger("value", value);
    validateTtl("TTL", ttl);
    if (this.lookup(key) !== undefined) {
      return false;
    }

    this.writeCounter(key, value, ttl);
    return true;
  }

  override async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "maximum", maximum, ttl);
    const next = this.readCounter(key) + amount;
    if (next > maximum) {
      return false;
    }

    this.writeCounter(key, next, ttl);
    return true;
  }

  override async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "minimum", minimum, ttl);
    const next = this.readCounter(key) - amount;
    if (next < minimum) {
      return false;
    }

    this.writeCounter(key, next, ttl);
    return true;
  }

  override async incrAndSum(key: string, keys: readonly string[], amount: number, maximum: number, ttl: number): Promise<boolean> {
    validateCounterUpdate(amount, "maximum", maximum, ttl);
    const next = this.readCounter(key) + amount;
    if (next > maximum) {
      return false;
    }

    // Like Redis's MGET, the sum skips keys that are missing or hold a list.
    let total = amount;
    for (const other of keys) {
      const entry = this.lookup(other);
      total += entry?.type === "string" ? parseCounter(other, entry.value) : 0;
    }
    if (total > maximum) {
      return false;
    }

    this.writeCounter(key, next, ttl);
    return true;
  }

  override async wait(key: string, timeout?: number): Promise<boolean> {
    validateWaitTimeout(timeout);
    const items = this.lookupList(key);
    if (items !== undefined && items.length > 0) {
      return rotate(items);
    }

    return new Promise<boolean>((resolve, reject) => {
      const waiters = this.waiters.get(key) ?? new Set<Waiter>();
      this.waiters.set(key, waiters);

      const waiter: Waiter = {
        wake: (woken) => {
          clearTimeout(timer);
          this.removeWaiter(key, waiter);
          if (woken instanceof Error) {
            reject(woken);
            return;
          }
          resolve(rotate(woken));
        },
      };
      const timer =
        timeout === undefined
          ? undefined
          : setTimeout(() => {
              this.removeWaiter(key, waiter);
              resolve(false);
            }, timeout);

      waiters.add(waiter);
    });
  }

  override async waitNotify(key: string, ttl: number): Promise<void> {
    validateTtl("TTL", ttl);
    let entry = this.lookup(key);
    if (entry === undefined) {
      entry = { type: "list", items: [], expiresAt: undefined };
      this.entries.set(key, entry);
    }
    if (entry.type !== "list") {
      throw wrongType(key, "list", "string");
    }

    entry.items.push(EVENT_VALUE);
    entry.expiresAt = this.clock() + ttl;

    const items = entry.items;
    for (const waiter of [...(this.waiters.get(key) ?? [])]) {
      waiter.wake(items);
    }
  }

  /** Rejects the waits in progress with ConnectionClosedError, as the Redis backend does. Stored keys stay. */
  override async close(): Promise<void> {
    const error = new ConnectionClosedError("The rate-limiter backend was closed while this wait was in progress.");
    for (const waiters of [...this.waiters.values()]) {
      for (const waiter of [...waiters]) {
        waiter.wake(error);
      }
    }
  }

  /** Returns the type, value and TTL of `key`, or null when it is missing or expired. */
  inspect(key: string): StoredKeyState | null {
    const entry = this.lookup(key);
    if (entry === undefined) {
      return null;
    }

    const pttl = entry.expiresAt === undefined ? -1 : entry.expiresAt - this.clock();
    return entry.type === "string" ? { type: "string", value: entry.value, pttl } : { type: "list", value: [...entry.items], pttl };
  }

  /** Returns the keys that exist and have not expired. */
  keys(): string[] {
    return [...this.entries.keys()].filter((key) => this.lookup(key) !== undefined);
  }

  /** Drops every key. Waits in progress keep waiting. */
  clear(): void {
    this.entries.clear();
  }

  private lookup(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private lookupList(key: string): string[] | undefined {
    const entry = this.lookup(key);
    if (entry?.type === "string") {
      throw wrongType(key, "list", "string");
    }
    return entry?.items;
  }

  private readCounter(key: string): number {
    const entry = this.lookup(key);
    if (entry?.type === "list") {
      throw wrongType(key, "string", "list");
    }
    return parseCounter(key, entry?.value ?? null);
  }

  /** Replaces `key` with a counter, as SET with PX does, whatever it held. */
  private writeCounter(key: string, value: number, ttl: number): void {
    this.entries.set(key, { type: "string", value: String(value), expiresAt: this.clock() + ttl });
  }

  private removeWaiter(key: string, waiter: Waiter): void {
    const waiters = this.waiters.get(key);
    waiters?.delete(waiter);
    if (waiters?.size === 0) {
      this.waiters.delete(key);
    }
  }
}

/** Moves the last item to the front, as BRPOPLPUSH from a list onto itself does, and reports whether it was an event. */
function rotate(items: string[]): boolean {
  const last = items.pop();
  if (last === undefined) {
    return false;
  }

  items.unshift(last);
  return last === EVENT_VALUE;
}

function wrongType(key: string, expected: "string" | "list", found: "string" | "list"): RateLimiterBackendError {
  return new RateLimiterBackendError(
    `Invalid data at key '${key}': expected a ${expected}, found a ${found}. Other data uses this key, so give the limiter or barrier another key.`,
    key,
  );
}
