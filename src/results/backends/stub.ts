/**
 * An in-memory result backend for tests and single-process apps. It keeps
 * the encoded text, so a value that the Redis backend would reject is
 * rejected here too.
 */

import { ResultBackend, type ResultBackendOptions } from "../backend.js";

interface StoredEntry {
  readonly text: string;
  /** UNIX ms after which the entry is gone. */
  readonly expiresAt: number;
}

/** Milliseconds between sweeps of expired entries, so stores stay cheap. */
const SWEEP_INTERVAL = 1000;

/** Options of StubBackend. */
export type StubBackendOptions = ResultBackendOptions;

/**
 * Stores results in a Map with per-entry TTLs. Blocking reads resolve as
 * soon as a result is stored and honour timeouts to the millisecond, unlike
 * the Redis backend, which waits in whole seconds.
 */
export class StubBackend extends ResultBackend {
  private readonly entries = new Map<string, StoredEntry>();
  private readonly waiters = new Map<string, Set<(text: string) => void>>();
  private lastSweep = Date.now();

  constructor(options: StubBackendOptions = {}) {
    super(options);
  }

  /** Number of results stored and not expired. */
  get size(): number {
    this.sweep(true);
    return this.entries.size;
  }

  /** Drops every stored result. Pending blocking reads keep waiting. */
  clear(): void {
    this.entries.clear();
  }

  protected override async readText(key: string): Promise<string | null> {
    return this.lookup(key);
  }

  protected override waitForText(key: string, timeout: number): Promise<string | null> {
    const found = this.lookup(key);
    if (found !== null || timeout <= 0) {
      return Promise.resolve(found);
    }

    return new Promise((resolve) => {
      const waiters = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, waiters);

      const deliver = (text: string | null): void => {
        clearTimeout(timer);
        waiters.delete(deliver);
        if (waiters.size === 0 && this.waiters.get(key) === waiters) {
          this.waiters.delete(key);
        }
        resolve(text);
      };
      const timer = setTimeout(() => {
        deliver(null);
      }, timeout);

      waiters.add(deliver);
    });
  }

  protected override async writeText(key: string, text: string, ttl: number): Promise<void> {
    this.sweep(false);
    this.entries.set(key, { text, expiresAt: Date.now() + ttl });

    for (const deliver of [...(this.waiters.get(key) ?? [])]) {
      deliver(text);
    }
  }

  /** Nothing to release: stored results stay readable. */
  override async close(): Promise<void> {}

  private lookup(key: string): string | null {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return null;
    }

    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return null;
    }
    return entry.text;
  }

  private sweep(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastSweep < SWEEP_INTERVAL) {
      return;
    }

    this.lastSweep = now;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(key);
      }
    }
  }
}
