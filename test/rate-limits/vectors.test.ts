/**
 * Replays every step of the rate-limit vector that Python Dramatiq 2.2
 * recorded against Redis, on the stub backend and on the real Redis, and
 * compares the keys, their types and values, and their TTLs after each step.
 *
 * The vector does not say which keys a step wrote, but every write in it
 * changes the value, so a key counts as written when it is new or its value
 * changed. A written key must have a fresh TTL; any other key must keep its
 * TTL running down. Steps are 10 ms apart (on the stub's fake clock, or in
 * real time on Redis) so the two cases differ.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Barrier,
  BucketRateLimiter,
  ConcurrentRateLimiter,
  RateLimitExceededError,
  WindowRateLimiter,
  type StoredKeyState,
} from "../../src/rate-limits/index.js";
import { loadVector } from "../helpers/vectors.js";
import { BACKEND_KINDS, FakeClock, createBackendFixture, hold, sleep, type BackendFixture, type BackendKind, type Holder } from "./support.js";

interface KeyVector {
  type: "string" | "list";
  pttl_ms: number;
  value: string | string[];
}

interface StepVector {
  op: string;
  acquired?: boolean;
  result?: boolean;
  keys?: Record<string, KeyVector>;
  exception_type?: string;
  str?: string;
}

interface SectionVector {
  python: string;
  start_clock_ms?: number;
  sequence: StepVector[];
}

interface RateLimitsVector {
  fixed_clock_ms: number;
  sections: Record<"concurrent" | "window" | "bucket" | "barrier", SectionVector>;
}

const vector = loadVector("ratelimits.json") as RateLimitsVector;
const STEP_GAP = 10;

/** One step of a section: the op text it must match and what it does; it returns the step's boolean outcome, if any. */
interface ReplayStep {
  op: string;
  run(): Promise<boolean | undefined>;
}

interface Replay {
  /** TTL of every key the section writes, in ms. */
  ttl: number;
  steps: ReplayStep[];
}

function concurrentReplay(fixture: BackendFixture, section: SectionVector): Replay {
  assert.equal(section.python, "ConcurrentRateLimiter(backend, 'spec_rl_mutex', limit=2, ttl=900000)");
  const limiter = new ConcurrentRateLimiter(fixture.backend, `${fixture.prefix}spec_rl_mutex`, { limit: 2, ttl: 900_000 });
  const holders: Holder[] = [];
  const enter = async (): Promise<boolean> => {
    const holder = hold(limiter);
    holders.push(holder);
    return holder.entered;
  };
  const exit = async (index: number): Promise<undefined> => {
    await holders[index]?.exit();
    return undefined;
  };

  return {
    ttl: 900_000,
    steps: [
      { op: "acquire #1", run: enter },
      { op: "acquire #2", run: enter },
      { op: "acquire #3 (over limit)", run: enter },
      { op: "after #3 exits (nothing released: it was not acquired)", run: () => exit(2) },
      { op: "release #2", run: () => exit(1) },
      { op: "release #1", run: () => exit(0) },
      {
        op: "acquire with raise_on_failure=True over the limit",
        async run() {
          const first = hold(limiter);
          const second = hold(limiter);
          assert.equal(await first.entered, true);
          assert.equal(await second.entered, true);
          const expected = section.sequence[6];
          await assert.rejects(
            limiter.acquire(() => assert.fail("the function ran over the limit")),
            (error: unknown) => {
              assert.ok(error instanceof RateLimitExceededError);
              // The vector names the key without this test's prefix.
              assert.equal(error.message, expected?.str?.replace("'spec_rl_mutex'", `'${limiter.key}'`));
              assert.equal(error.key, limiter.key);
              assert.equal(error.name, `${expected?.exception_type}Error`);
              assert.equal(error.code, "MELO_ERR_RATE_LIMIT_EXCEEDED");
              return true;
            },
          );
          await first.exit();
          await second.exit();
          return undefined;
        },
      },
    ],
  };
}

function windowReplay(fixture: BackendFixture, section: SectionVector): Replay {
  assert.equal(section.python, "WindowRateLimiter(backend, 'spec_rl_window', limit=3, window=5)");
  const start = section.start_clock_ms ?? Number.NaN;
  const clock = new FakeClock(start);
  const limiter = new WindowRateLimiter(fixture.backend, `${fixture.prefix}spec_rl_window`, { limit: 3, window: 5, clock: clock.read });
  const acquireAt = async (time: number): Promise<boolean> => {
    clock.now = time;
    return limiter.acquire(() => undefined, { raiseOnFailure: false });
  };

  return {
    ttl: 5000,
    steps: [
      { op: `acquire #1 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire #2 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire #3 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire #4 at t=${start} ms`, run: () => acquireAt(start) },
      { op: "acquire one second later (sum over 5 one-second keys is still 3)", run: () => acquireAt(start + 1000) },
      { op: "acquire 6 seconds after the first ones (their second has left the window)", run: () => acquireAt(start + 6000) },
    ],
  };
}

function bucketReplay(fixture: BackendFixture, section: SectionVector): Replay {
  assert.equal(section.python, "BucketRateLimiter(backend, 'spec_rl_bucket', limit=2, bucket=1000)");
  const start = vector.fixed_clock_ms + 123;
  const clock = new FakeClock(start);
  const limiter = new BucketRateLimiter(fixture.backend, `${fixture.prefix}spec_rl_bucket`, { limit: 2, bucket: 1000, clock: clock.read });
  const acquireAt = async (time: number): Promise<boolean> => {
    clock.now = time;
    return limiter.acquire(() => undefined, { raiseOnFailure: false });
  };

  return {
    ttl: 1000,
    steps: [
      { op: `acquire #1 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire #2 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire #3 at t=${start} ms`, run: () => acquireAt(start) },
      { op: `acquire in the next bucket at t=${start + 1000} ms`, run: () => acquireAt(start + 1000) },
    ],
  };
}

function barrierReplay(fixture: BackendFixture, section: SectionVector): Replay {
  assert.equal(section.python, "Barrier(backend, 'spec_rl_barrier', ttl=900000)");
  const barrier = new Barrier(fixture.backend, `${fixture.prefix}spec_rl_barrier`, { ttl: 900_000 });
  const neverCreated = new Barrier(fixture.backend, `${fixture.prefix}spec_rl_barrier2`, { ttl: 900_000 });

  return {
    ttl: 900_000,
    steps: [
      { op: "create(parties=3)", run: () => barrier.create(3) },
      { op: "create(parties=3) again", run: () => barrier.create(3) },
      { op: "wait(block=False) #1", run: () => barrier.wait({ block: false }) },
      { op: "wait(block=False) #2", run: () => barrier.wait({ block: false }) },
      { op: "wait(block=False) #3", run: () => barrier.wait({ block: false }) },
      { op: "wait(block=False) #4 (after it cleared)", run: () => barrier.wait({ block: false }) },
      { op: "wait(block=False) on a barrier that was never created", run: () => neverCreated.wait({ block: false }) },
    ],
  };
}

const replays = {
  concurrent: concurrentReplay,
  window: windowReplay,
  bucket: bucketReplay,
  barrier: barrierReplay,
} as const;

function sameValue(a: KeyVector["value"] | undefined, b: KeyVector["value"]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Checks one key's TTL: fresh when the step wrote it, else lower than after the previous step. */
function checkTtl(kind: BackendKind, label: string, actual: StoredKeyState, previous: StoredKeyState | undefined, written: boolean, ttl: number): void {
  assert.ok(actual.pttl > 0, `${label}: PTTL ${actual.pttl} means the key has no expiry`);
  assert.ok(actual.pttl <= ttl, `${label}: PTTL ${actual.pttl} exceeds the TTL ${ttl}`);

  if (kind === "stub") {
    const expected = written || previous === undefined ? ttl : previous.pttl - STEP_GAP;
    assert.equal(actual.pttl, expected, `${label}: ${written ? "written, so the TTL restarts" : "not written, so the TTL runs on"}`);
    return;
  }

  // Real time passes between a write and the read of its PTTL, so only an untouched key has a sharp bound:
  // at least STEP_GAP ms (minus 1 for rounding) below its previous reading.
  if (written) {
    assert.ok(actual.pttl > ttl / 2, `${label}: written, so PTTL ${actual.pttl} should be near the TTL ${ttl}`);
  } else if (previous !== undefined) {
    const bound = previous.pttl - STEP_GAP + 1;
    assert.ok(actual.pttl <= bound, `${label}: not written, so PTTL ${actual.pttl} should have run down to ${bound} or less`);
  }
}

async function replaySection(kind: BackendKind, name: keyof typeof replays): Promise<void> {
  const section = vector.sections[name];
  const ttlClock = new FakeClock(Date.now());
  const fixture = createBackendFixture(kind, { stubClock: ttlClock.read });

  try {
    const replay = replays[name](fixture, section);
    assert.equal(replay.steps.length, section.sequence.length, `${name}: the replay covers every step of the vector`);

    let previousExpected: Record<string, KeyVector> = {};
    let previousActual = new Map<string, StoredKeyState>();
    for (const [index, step] of section.sequence.entries()) {
      const action = replay.steps[index];
      assert.equal(action?.op, step.op, `${name} step ${index}: the replay is out of step with the vector`);

      const outcome = await action.run();
      const label = `${kind} ${name} '${step.op}'`;
      if (step.acquired !== undefined) {
        assert.equal(outcome, step.acquired, `${label}: acquired`);
      }
      if (step.result !== undefined) {
        assert.equal(outcome, step.result, `${label}: result`);
      }

      if (step.keys !== undefined) {
        const actual = await fixture.snapshot();
        assert.deepEqual([...actual.keys()].sort(), Object.keys(step.keys).sort(), `${label}: keys`);
        for (const [key, expected] of Object.entries(step.keys)) {
          const state = actual.get(key);
          assert.ok(state !== undefined, `${label}: key ${key} is missing`);
          assert.equal(state.type, expected.type, `${label}: type of ${key}`);
          assert.deepEqual(state.value, expected.value, `${label}: value of ${key}`);

          const written = !sameValue(previousExpected[key]?.value, expected.value);
          checkTtl(kind, `${label} ${key}`, state, previousActual.get(key), written, replay.ttl);
        }
        previousExpected = step.keys;
        previousActual = actual;
      }

      ttlClock.advance(STEP_GAP);
      if (kind === "redis") {
        await sleep(STEP_GAP);
      }
    }
  } finally {
    await fixture.cleanup();
  }
}

for (const kind of BACKEND_KINDS) {
  for (const name of Object.keys(replays) as (keyof typeof replays)[]) {
    test(`${kind} ${name} replays vector`, async () => {
      await replaySection(kind, name);
    });
  }
}
