import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigurationError } from "../../src/errors.js";
import {
  ConcurrentRateLimiter,
  RateLimitExceededError,
  StubRateLimiterBackend,
  type RateLimiterBackend,
} from "../../src/rate-limits/index.js";
import { captureLogs } from "../helpers/logs.js";
import { BACKEND_KINDS, createBackendFixture, hold, type BackendFixture, type BackendKind } from "./support.js";

async function withFixture(kind: BackendKind, body: (fixture: BackendFixture) => Promise<void>): Promise<void> {
  const fixture = createBackendFixture(kind);
  try {
    await body(fixture);
  } finally {
    await fixture.cleanup();
  }
}

async function counterValue(fixture: BackendFixture, key: string): Promise<string | undefined> {
  const state = (await fixture.snapshot()).get(key);
  if (state?.type === "list") {
    assert.fail(`${key} should hold a counter, not a list`);
  }
  return state?.value;
}

for (const kind of BACKEND_KINDS) {
  test(`${kind} concurrent limiter admits limit holders`, async () => {
    await withFixture(kind, async (fixture) => {
      // Two backends on one storage, as two worker processes would have.
      const backends = [fixture.backend, fixture.peer()];
      const limiters = backends.map((backend) => new ConcurrentRateLimiter(backend, `${fixture.prefix}mutex`, { limit: 2 }));
      const holders = Array.from({ length: 10 }, (_, index) => hold(limiters[index % 2] as ConcurrentRateLimiter));

      const entered = await Promise.all(holders.map((holder) => holder.entered));
      assert.equal(entered.filter(Boolean).length, 2, `exactly 2 of 10 entered: ${JSON.stringify(entered)}`);
      assert.equal(await counterValue(fixture, "mutex"), "2");

      await Promise.all(holders.map((holder) => holder.exit()));
      assert.equal(await counterValue(fixture, "mutex"), "0");
    });
  });

  test(`${kind} concurrent limiter never exceeds limit in waves`, async () => {
    await withFixture(kind, async (fixture) => {
      const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}waves`, { limit: 3 });
      let inside = 0;
      let maxInside = 0;
      let ran = 0;

      for (let wave = 0; wave < 5; wave += 1) {
        const outcomes = await Promise.all(
          Array.from({ length: 8 }, () =>
            limiter.acquire(
              async () => {
                inside += 1;
                maxInside = Math.max(maxInside, inside);
                await new Promise((resolve) => setImmediate(resolve));
                inside -= 1;
                ran += 1;
              },
              { raiseOnFailure: false },
            ),
          ),
        );
        assert.ok(outcomes.filter(Boolean).length >= 1, `wave ${wave}: someone got in`);
      }

      assert.ok(maxInside <= 3, `at most 3 inside at once, saw ${maxInside}`);
      assert.ok(ran >= 5);
      assert.equal(await counterValue(fixture, "waves"), "0");
    });
  });

  test(`${kind} concurrent limiter releases after throw`, async () => {
    await withFixture(kind, async (fixture) => {
      const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}throws`, { limit: 1 });
      const failure = new Error("boom");

      await assert.rejects(
        limiter.acquire(async () => {
          assert.equal(await counterValue(fixture, "throws"), "1");
          throw failure;
        }),
        (error: unknown) => error === failure,
      );
      assert.equal(await counterValue(fixture, "throws"), "0");

      assert.equal(await limiter.acquire(() => "again"), "again");
    });
  });

  test(`${kind} concurrent limiter raises when full`, async () => {
    await withFixture(kind, async (fixture) => {
      const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}full`, { limit: 1 });
      const holder = hold(limiter);
      assert.equal(await holder.entered, true);

      let ran = false;
      await assert.rejects(
        limiter.acquire(() => {
          ran = true;
        }),
        (error: unknown) => {
          assert.ok(error instanceof RateLimitExceededError);
          assert.equal(error.message, `rate limit exceeded for key '${fixture.prefix}full'`);
          assert.equal(error.key, `${fixture.prefix}full`);
          return true;
        },
      );
      assert.equal(ran, false, "the function must not run over the limit");
      assert.equal(await counterValue(fixture, "full"), "1", "a rejected acquire changes nothing");

      await holder.exit();
    });
  });

  test(`${kind} acquire without raising returns boolean`, async () => {
    await withFixture(kind, async (fixture) => {
      const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}boolean`, { limit: 1 });
      let calls = 0;
      const work = (): string => {
        calls += 1;
        return "ignored";
      };

      assert.equal(await limiter.acquire(work, { raiseOnFailure: false }), true);
      assert.equal(calls, 1);

      const holder = hold(limiter);
      assert.equal(await holder.entered, true);
      assert.equal(await limiter.acquire(work, { raiseOnFailure: false }), false);
      assert.equal(calls, 1, "the function must not run when the limiter is full");
      await holder.exit();
    });
  });

  test(`${kind} acquire returns function value`, async () => {
    await withFixture(kind, async (fixture) => {
      const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}value`);
      assert.deepEqual(await limiter.acquire(async () => ({ answer: 42 })), { answer: 42 });
      assert.equal(await limiter.acquire(() => 7, { raiseOnFailure: true }), 7);
    });
  });
}

test("concurrent limiter defaults match Python", () => {
  const limiter = new ConcurrentRateLimiter(new StubRateLimiterBackend(), "defaults");
  assert.equal(limiter.limit, 1);
  assert.equal(limiter.ttl, 900_000);
});

test("concurrent limiter rejects invalid options", () => {
  const backend = new StubRateLimiterBackend();
  for (const options of [{ limit: 0 }, { limit: 1.5 }, { ttl: 0 }, { ttl: Number.NaN }]) {
    assert.throws(() => new ConcurrentRateLimiter(backend, "key", options), ConfigurationError, JSON.stringify(options));
  }
  assert.throws(() => new ConcurrentRateLimiter(backend, ""), ConfigurationError);
  assert.throws(() => new ConcurrentRateLimiter(JSON.parse("{}") as RateLimiterBackend, "key"), /Invalid rate-limiter backend \(a object without add, incr/);
});

/** A stub backend whose release fails. */
class FailingReleaseBackend extends StubRateLimiterBackend {
  readonly releaseError = new Error("decr failed");

  override async decr(): Promise<boolean> {
    throw this.releaseError;
  }
}

test("release failure after throw keeps original error", async () => {
  const logs = captureLogs();
  try {
    const backend = new FailingReleaseBackend();
    const limiter = new ConcurrentRateLimiter(backend, "release-fails");
    const failure = new Error("actor failed");

    await assert.rejects(
      limiter.acquire(() => {
        throw failure;
      }),
      (error: unknown) => error === failure,
    );

    const logged = logs.find("error", "Failed to release rate limiter 'release-fails'");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.fields["err"], backend.releaseError);
  } finally {
    logs.restore();
  }
});

test("release failure after success rejects", async () => {
  const backend = new FailingReleaseBackend();
  const limiter = new ConcurrentRateLimiter(backend, "release-fails");
  await assert.rejects(
    limiter.acquire(() => "done"),
    (error: unknown) => error === backend.releaseError,
  );
});
