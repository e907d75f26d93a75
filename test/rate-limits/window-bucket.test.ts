import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigurationError } from "../../src/errors.js";
import { BucketRateLimiter, RateLimitExceededError, StubRateLimiterBackend, WindowRateLimiter } from "../../src/rate-limits/index.js";
import { BACKEND_KINDS, FakeClock, createBackendFixture, type BackendFixture, type BackendKind } from "./support.js";

/** A second boundary: 2026-01-01T00:00:10Z in UNIX ms. */
const SECOND = 1_767_225_610_000;

async function withFixture(kind: BackendKind, body: (fixture: BackendFixture) => Promise<void>): Promise<void> {
  const fixture = createBackendFixture(kind);
  try {
    await body(fixture);
  } finally {
    await fixture.cleanup();
  }
}

async function counters(fixture: BackendFixture): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const [key, state] of await fixture.snapshot()) {
    if (state.type === "list") {
      assert.fail(`${key} should hold a counter, not a list`);
    }
    values[key] = state.value;
  }
  return values;
}

for (const kind of BACKEND_KINDS) {
  test(`${kind} window slides by whole seconds`, async () => {
    await withFixture(kind, async (fixture) => {
      const clock = new FakeClock(SECOND + 999);
      const limiter = new WindowRateLimiter(fixture.backend, `${fixture.prefix}api`, { limit: 2, window: 3, clock: clock.read });
      const tryAt = async (time: number): Promise<boolean> => {
        clock.now = time;
        return limiter.acquire(() => undefined, { raiseOnFailure: false });
      };
      const second = SECOND / 1000;

      assert.equal(await tryAt(SECOND + 999), true, "first in second s");
      assert.equal(await tryAt(SECOND + 999), true, "second in second s");
      assert.equal(await tryAt(SECOND + 999), false, "third in second s is over the limit");
      assert.equal(await tryAt(SECOND + 1000), false, "1 ms later, second s is still in the window");
      assert.equal(await tryAt(SECOND + 2999), false, "second s is still in the window at s+2");
      assert.equal(await tryAt(SECOND + 3000), true, "at s+3 second s has left the window");
      assert.equal(await tryAt(SECOND + 3500), true);
      assert.equal(await tryAt(SECOND + 3999), false);

      assert.deepEqual(await counters(fixture), { [`api@${second}`]: "2", [`api@${second + 3}`]: "2" });
    });
  });

  test(`${kind} window counter TTL spans window`, async () => {
    await withFixture(kind, async (fixture) => {
      const clock = new FakeClock(SECOND);
      const limiter = new WindowRateLimiter(fixture.backend, `${fixture.prefix}ttl`, { limit: 5, window: 4, clock: clock.read });
      await limiter.acquire(() => undefined);

      const state = (await fixture.snapshot()).get(`ttl@${SECOND / 1000}`);
      assert.ok(state !== undefined, "the counter of the current second exists");
      assert.ok(state.pttl > 2000, `PTTL ${state.pttl} should be near 4000 ms`);
      assert.ok(state.pttl <= 4000, `PTTL ${state.pttl} should be near 4000 ms`);
    });
  });

  test(`${kind} window raises when full`, async () => {
    await withFixture(kind, async (fixture) => {
      const clock = new FakeClock(SECOND);
      const limiter = new WindowRateLimiter(fixture.backend, `${fixture.prefix}full`, { clock: clock.read });
      assert.equal(await limiter.acquire(() => "in"), "in");
      await assert.rejects(limiter.acquire(() => "over"), RateLimitExceededError);
    });
  });

  test(`${kind} bucket aligns to epoch`, async () => {
    await withFixture(kind, async (fixture) => {
      // SECOND is a multiple of 1000 but not of 3000, so its 3000 ms bucket starts 1000 ms before it.
      const bucketStart = SECOND - 1000;
      assert.equal(bucketStart % 3000, 0);
      const lastMs = bucketStart + 2999;
      const clock = new FakeClock(lastMs);
      const limiter = new BucketRateLimiter(fixture.backend, `${fixture.prefix}mail`, { limit: 2, bucket: 3000, clock: clock.read });
      const tryAt = async (time: number): Promise<boolean> => {
        clock.now = time;
        return limiter.acquire(() => undefined, { raiseOnFailure: false });
      };

      assert.equal(await tryAt(SECOND), true);
      assert.equal(await tryAt(lastMs), true);
      assert.equal(await tryAt(lastMs), false, "third in one bucket is over the limit");
      const next = bucketStart + 3000;
      assert.equal(await tryAt(next), true, "a new bucket starts at the next multiple of 3000 ms");

      assert.deepEqual(await counters(fixture), { [`mail@${bucketStart}`]: "2", [`mail@${next}`]: "1" });
    });
  });

  test(`${kind} bucket counter TTL is bucket length`, async () => {
    await withFixture(kind, async (fixture) => {
      const clock = new FakeClock(SECOND + 1);
      const limiter = new BucketRateLimiter(fixture.backend, `${fixture.prefix}ttl`, { limit: 3, bucket: 60_000, clock: clock.read });
      await limiter.acquire(() => undefined);
      await limiter.acquire(() => undefined);

      const state = (await fixture.snapshot()).get(`ttl@${SECOND - (SECOND % 60_000)}`);
      assert.ok(state !== undefined, "the counter of the current bucket exists");
      assert.equal(state.value, "2");
      assert.ok(state.pttl > 30_000, `PTTL ${state.pttl} should be near 60000 ms`);
      assert.ok(state.pttl <= 60_000, `PTTL ${state.pttl} should be near 60000 ms`);
    });
  });
}

test("stub window counters expire with clock", async () => {
  const clock = new FakeClock(SECOND);
  const backend = new StubRateLimiterBackend({ clock: clock.read });
  const limiter = new WindowRateLimiter(backend, "expiring", { limit: 1, window: 2, clock: clock.read });

  await limiter.acquire(() => undefined);
  assert.deepEqual(backend.keys(), [`expiring@${SECOND / 1000}`]);
  clock.advance(1999);
  assert.equal(backend.inspect(`expiring@${SECOND / 1000}`)?.pttl, 1);
  clock.advance(1);
  assert.deepEqual(backend.keys(), []);
});

test("window and bucket defaults match Python", () => {
  const backend = new StubRateLimiterBackend();
  const window = new WindowRateLimiter(backend, "window");
  assert.equal(window.limit, 1);
  assert.equal(window.window, 1);
  const bucket = new BucketRateLimiter(backend, "bucket");
  assert.equal(bucket.limit, 1);
  assert.equal(bucket.bucket, 1000);
});

test("window and bucket reject invalid options", () => {
  const backend = new StubRateLimiterBackend();
  for (const options of [{ limit: 0 }, { window: 0 }, { window: 0.5 }, { limit: Number.POSITIVE_INFINITY }]) {
    assert.throws(() => new WindowRateLimiter(backend, "key", options), ConfigurationError, JSON.stringify(options));
  }
  for (const options of [{ limit: -1 }, { bucket: 0 }, { bucket: 2.5 }]) {
    assert.throws(() => new BucketRateLimiter(backend, "key", options), ConfigurationError, JSON.stringify(options));
  }
});
