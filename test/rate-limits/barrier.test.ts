import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Redis } from "ioredis";

import { ConfigurationError, ConnectionClosedError } from "../../src/errors.js";
import { Barrier, StubRateLimiterBackend, type StoredKeyState } from "../../src/rate-limits/index.js";
import { BACKEND_KINDS, FakeClock, REDIS_URL, createBackendFixture, sleep, type BackendFixture, type BackendKind } from "./support.js";

async function withFixture(kind: BackendKind, body: (fixture: BackendFixture) => Promise<void>): Promise<void> {
  const fixture = createBackendFixture(kind);
  try {
    await body(fixture);
  } finally {
    await fixture.cleanup();
  }
}

async function stateOf(fixture: BackendFixture, key: string): Promise<StoredKeyState | undefined> {
  return (await fixture.snapshot()).get(key);
}

for (const kind of BACKEND_KINDS) {
  test(`${kind} barrier create reports existing barrier`, async () => {
    await withFixture(kind, async (fixture) => {
      const barrier = new Barrier(fixture.backend, `${fixture.prefix}group`, { ttl: 60_000 });

      assert.equal(await barrier.create(3), true);
      assert.equal(await barrier.create(5), false);

      const state = await stateOf(fixture, "group");
      assert.equal(state?.type, "string");
      assert.equal(state.value, "3", "a second create leaves the first count");
      assert.ok(state.pttl > 30_000, `PTTL ${state.pttl} should be near 60000`);
      assert.ok(state.pttl <= 60_000, `PTTL ${state.pttl} should be near 60000`);
    });
  });

  test(`${kind} barrier clears on last party`, async () => {
    await withFixture(kind, async (fixture) => {
      const barrier = new Barrier(fixture.backend, `${fixture.prefix}group`);
      await barrier.create(3);

      assert.equal(await barrier.wait({ block: false }), false);
      assert.equal((await stateOf(fixture, "group"))?.value, "2");
      assert.equal(await barrier.wait({ block: false }), false);
      assert.equal((await stateOf(fixture, "group"))?.value, "1");
      assert.equal(await stateOf(fixture, "group@events"), undefined, "no event before the barrier clears");

      assert.equal(await barrier.wait({ block: false }), true, "the third party clears it");
      assert.equal((await stateOf(fixture, "group"))?.value, "1", "the count never drops below 1");
      assert.deepEqual((await stateOf(fixture, "group@events"))?.value, ["x"]);

      assert.equal(await barrier.wait({ block: false }), true, "later parties find it cleared");
      assert.equal(await barrier.wait(), true, "a blocking wait on a cleared barrier returns at once");
      assert.equal((await stateOf(fixture, "group"))?.value, "1");
      assert.deepEqual((await stateOf(fixture, "group@events"))?.value, ["x", "x", "x"]);
    });
  });

  test(`${kind} barrier missing key counts as cleared`, async () => {
    await withFixture(kind, async (fixture) => {
      const barrier = new Barrier(fixture.backend, `${fixture.prefix}never-created`, { ttl: 60_000 });

      assert.equal(await barrier.wait({ block: false }), true);
      assert.equal(await barrier.wait({ block: false }), true, "every wait on a missing barrier clears it");
      assert.equal(await stateOf(fixture, "never-created"), undefined, "a wait does not create the counter");

      const events = await stateOf(fixture, "never-created@events");
      assert.deepEqual(events?.value, ["x", "x"]);
      assert.ok(events !== undefined, "the events list exists");
      assert.ok(events.pttl > 30_000, `PTTL ${events.pttl} should be near 60000`);
      assert.ok(events.pttl <= 60_000, `PTTL ${events.pttl} should be near 60000`);
    });
  });

  test(`${kind} blocking wait released by last party`, async () => {
    await withFixture(kind, async (fixture) => {
      // Three parties on separate backends, as three worker processes would have.
      const key = `${fixture.prefix}meet`;
      const connectionName = `melo-test-barrier-${randomUUID()}`;
      const parties = [0, 1, 2].map(() => new Barrier(fixture.peer({ redisOptions: { connectionName } }), key));
      const [first, second, last] = parties as [Barrier, Barrier, Barrier];
      assert.equal(await first.create(3), true);

      const settled: boolean[] = [];
      const firstWait = first.wait({ timeout: 20_000 }).then((cleared) => settled.push(cleared));
      const secondWait = second.wait({ timeout: 20_000 }).then((cleared) => settled.push(cleared));
      await waitForCount(fixture, "meet", "1");
      if (fixture.kind === "redis") {
        await waitForBlockedClients(connectionName, 2);
      }
      assert.deepEqual(settled, [], "the blocked parties wait for the last one");

      assert.equal(await last.wait({ block: false }), true);
      await Promise.all([firstWait, secondWait]);
      assert.deepEqual(settled, [true, true]);
      assert.deepEqual((await stateOf(fixture, "meet@events"))?.value, ["x"], "waiters leave the event in place");
    });
  });

  test(`${kind} blocking wait times out`, async () => {
    await withFixture(kind, async (fixture) => {
      const barrier = new Barrier(fixture.backend, `${fixture.prefix}slow`);
      await barrier.create(2);

      assert.equal(await barrier.wait({ timeout: 1000 }), false);
      assert.equal((await stateOf(fixture, "slow"))?.value, "1", "the timed-out party stays counted");
    });
  });

  test(`${kind} barrier rejects sub-second timeout before counting`, async () => {
    await withFixture(kind, async (fixture) => {
      const barrier = new Barrier(fixture.backend, `${fixture.prefix}strict`);
      await barrier.create(2);

      await assert.rejects(barrier.wait({ timeout: 999 }), (error: unknown) => {
        assert.ok(error instanceof ConfigurationError);
        assert.match(error.message, /Invalid wait timeout 999: .*at least 1000/);
        return true;
      });
      await assert.rejects(fixture.backend.wait(`${fixture.prefix}strict@events`, 0), ConfigurationError);
      assert.equal((await stateOf(fixture, "strict"))?.value, "2", "a rejected wait does not count the party");

      assert.equal(await barrier.wait({ block: false, timeout: 1 }), false, "the timeout is unused without block");
    });
  });

  test(`${kind} close rejects blocked wait`, async () => {
    await withFixture(kind, async (fixture) => {
      const backend = fixture.peer();
      const barrier = new Barrier(backend, `${fixture.prefix}closing`);
      await barrier.create(2);

      const blocked = barrier.wait({ timeout: 20_000 });
      await waitForCount(fixture, "closing", "1");
      await backend.close();
      await assert.rejects(blocked, ConnectionClosedError);
    });
  });
}

/** Waits until the barrier counter at `key` (without prefix) contains `value`, so a party's decrement has landed. */
async function waitForCount(fixture: BackendFixture, key: string, value: string): Promise<void> {
  let current: string | readonly string[] | undefined;
  const deadline = Date.now() + 10_000;
  for (;;) {
    current = (await stateOf(fixture, key))?.value;
    if (current === value) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${key} to hold ${value}; it holds ${JSON.stringify(current)}.`);
    }
    await sleep(5);
  }
}

/** Waits until `count` connections named `connectionName` are blocked in BRPOPLPUSH. */
async function waitForBlockedClients(connectionName: string, count: number): Promise<void> {
  const raw = new Redis(REDIS_URL);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const clients = (await raw.client("LIST")) as string;
      const blocked = clients.split("\n").filter((line) => line.includes(` name=${connectionName} `) && line.includes(" cmd=brpoplpush "));
      if (blocked.length === count) {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${count} connections blocked in BRPOPLPUSH; ${blocked.length} are.`);
      }
      await sleep(5);
    }
  } finally {
    await raw.quit();
  }
}

test("barrier expired on stub counts as cleared", async () => {
  const clock = new FakeClock(Date.now());
  const backend = new StubRateLimiterBackend({ clock: clock.read });
  const barrier = new Barrier(backend, "expiring", { ttl: 1000 });
  await barrier.create(2);

  clock.advance(1000);
  assert.equal(await barrier.wait({ block: false }), true);
});

test("barrier defaults match Python", () => {
  const barrier = new Barrier(new StubRateLimiterBackend(), "group");
  assert.equal(barrier.ttl, 900_000);
  assert.equal(barrier.eventsKey, "group@events");
});

test("barrier rejects invalid arguments", async () => {
  const backend = new StubRateLimiterBackend();
  assert.throws(() => new Barrier(backend, "", {}), ConfigurationError);
  assert.throws(() => new Barrier(backend, "group", { ttl: 0 }), ConfigurationError);
  const barrier = new Barrier(backend, "group");
  await assert.rejects(barrier.create(0), ConfigurationError);
  await assert.rejects(barrier.create(1.5), ConfigurationError);
  assert.deepEqual(backend.keys(), []);
});
