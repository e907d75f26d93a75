import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";

import { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { group, Group, pipeline } from "../../src/composition/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { defaultMiddleware } from "../../src/middleware/defaults.js";
import { DEFAULT_BARRIER_TTL, GroupCallbacks } from "../../src/middleware/group-callbacks.js";
import type { RateLimiterBackend } from "../../src/rate-limits/backend.js";
import { RedisRateLimiterBackend } from "../../src/rate-limits/backends/redis.js";
import { StubRateLimiterBackend } from "../../src/rate-limits/backends/stub.js";
import { ResultFailureError, ResultTimeoutError, Results, StubBackend } from "../../src/results/index.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker, type StubFixture } from "../helpers/stub.js";
import { EnqueueRecorder, groupBarrierAfterRun, messageCase, vectorId, vectorMessage } from "./support.js";

const REDIS_URL = "redis://127.0.0.1:6379/0";
const admin = new Redis(REDIS_URL, { lazyConnect: true });

after(async () => {
  await admin.quit();
});

/** The state of a barrier's two keys, read from the storage that contains them. */
interface BarrierState {
  value: string | null;
  events: string[] | null;
  pttl: number | null;
}

/** A rate-limiter backend for the tests, with a way to read barrier state and remove what the test created. */
interface BarrierStorage {
  readonly name: string;
  readonly backend: RateLimiterBackend;
  /** Returns a completion id this test alone uses. */
  newId(): string;
  read(id: string): Promise<BarrierState>;
  cleanup(): Promise<void>;
}

const storages: { name: string; create(): BarrierStorage }[] = [
  {
    name: "stub",
    create: () => {
      const backend = new StubRateLimiterBackend();
      return {
        name: "stub",
        backend,
        newId: () => randomUUID(),
        read: async (id) => {
          const counter = backend.inspect(id);
          const events = backend.inspect(`${id}@events`);
          return {
            value: counter?.type === "string" ? counter.value : null,
            events: events?.type === "list" ? [...events.value] : null,
            pttl: counter?.pttl ?? null,
          };
        },
        cleanup: async () => {
          await backend.close();
        },
      };
    },
  },
  {
    name: "redis",
    create: () => {
      const backend = new RedisRateLimiterBackend({ url: REDIS_URL });
      const ids: string[] = [];
      return {
        name: "redis",
        backend,
        newId: () => {
          // Barrier keys have no namespace, so a recognisable prefix and a uuid keep them apart from everything else.
          const id = `melotest-group-${randomUUID()}`;
          ids.push(id);
          return id;
        },
        read: async (id) => {
          const exists = await admin.exists(`${id}@events`);
          return {
            value: await admin.get(id),
            events: exists === 1 ? await admin.lrange(`${id}@events`, 0, -1) : null,
            pttl: (await admin.exists(id)) === 1 ? await admin.pttl(id) : null,
          };
        },
        cleanup: async () => {
          for (const id of ids) {
            await admin.del(id, `${id}@events`);
          }
          await backend.close();
        },
      };
    },
  },
];

interface GroupFixture extends StubFixture {
  recorder: EnqueueRecorder;
  results: StubBackend;
}

function createFixture(backend: RateLimiterBackend, concurrency = 4): GroupFixture {
  const recorder = new EnqueueRecorder();
  const results = new StubBackend();
  const fixture = createStubWorker({
    concurrency,
    middleware: [...defaultMiddleware(), new Results({ backend: results, storeResults: true }), new GroupCallbacks({ backend }), recorder],
  });
  return { ...fixture, recorder, results };
}

/** The children of the group_child_* vectors: add(1, 2), add(3, 4), add(5) | add(6), with callback noop(). */
function vectorGroup(broker: StubBroker): Group {
  return group(
    [
      vectorMessage("add", [1, 2], 0x13),
      vectorMessage("add", [3, 4], 0x14),
      pipeline([vectorMessage("add", [5], 0x15), vectorMessage("add", [6], 0x16)], { broker }),
    ],
    { broker },
  ).addCompletionCallback(vectorMessage("noop", [], 0x17));
}

test("group children match vector bytes", async () => {
  const backend = new StubRateLimiterBackend();
  const broker = new StubBroker({ middleware: [...defaultMiddleware(), new GroupCallbacks({ backend })] });

  await vectorGroup(broker).run({ completionId: groupBarrierAfterRun.key });

  const bodies = broker.queue("default").bodies.map((body) => body.toString("latin1"));
  assert.equal(bodies.length, 3);
  assert.equal(bodies[0], messageCase("group_child_0").encoded);
  assert.equal(bodies[1], messageCase("group_child_1").encoded);
  assert.equal(bodies[2], messageCase("group_child_2").encoded);
});

test("group run creates barrier before children", async () => {
  const backend = new StubRateLimiterBackend();
  const seen: (string | null)[] = [];
  const broker = new StubBroker({ middleware: [...defaultMiddleware(), new GroupCallbacks({ backend })] });
  const probe = new EnqueueRecorder();
  probe.afterEnqueue = () => {
    seen.push(backend.inspect(groupBarrierAfterRun.key)?.type === "string" ? "created" : null);
  };
  broker.addMiddleware(probe);

  await vectorGroup(broker).run({ completionId: groupBarrierAfterRun.key });

  assert.deepEqual(seen, ["created", "created", "created"]);
  const state = backend.inspect(groupBarrierAfterRun.key);
  assert.equal(state?.type, "string");
  assert.equal(state.value, String(groupBarrierAfterRun.stub_backend_value));
  assert.ok(state.pttl > 0, `pttl ${state.pttl}`);
  assert.ok(state.pttl <= DEFAULT_BARRIER_TTL, `pttl ${state.pttl}`);
});

test("group default completion id is fresh uuid", async () => {
  const backend = new StubRateLimiterBackend();
  const recorder = new EnqueueRecorder();
  const broker = new StubBroker({ middleware: [new GroupCallbacks({ backend }), recorder] });
  const work = group([vectorMessage("add", [1, 2], 0x30)], { broker }).addCompletionCallback(vectorMessage("noop", [], 0x31));

  await work.run();
  await work.run();

  const ids = recorder.enqueued.map((message) => message.options["group_completion_uuid"]);
  assert.equal(ids.length, 2);
  for (const id of ids) {
    assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
  assert.notEqual(ids[0], ids[1], "each run gets its own barrier");
});

test("group run rejects reused completion id", async () => {
  const backend = new StubRateLimiterBackend();
  const broker = new StubBroker({ middleware: [new GroupCallbacks({ backend })] });
  const work = group([vectorMessage("add", [1, 2], 0x32)], { broker }).addCompletionCallback(vectorMessage("noop", [], 0x33));

  await work.run({ completionId: "reused" });

  await assert.rejects(work.run({ completionId: "reused" }), /already exists/);
  assert.equal(broker.queue("default").bodies.length, 1, "the rejected run enqueued nothing");
});

test("group callbacks need GroupCallbacks middleware", async () => {
  const broker = new StubBroker();
  const work = group([vectorMessage("add", [1, 2], 0x34)], { broker }).addCompletionCallback(vectorMessage("noop", [], 0x35));

  await assert.rejects(work.run(), /GroupCallbacks middleware/);
  assert.equal(broker.queue("default").bodies.length, 0);
});

test("group callbacks reject empty and nested groups", async () => {
  const backend = new StubRateLimiterBackend();
  const broker = new StubBroker({ middleware: [new GroupCallbacks({ backend })] });
  const callback = vectorMessage("noop", [], 0x36);

  await assert.rejects(group([], { broker }).addCompletionCallback(callback).run(), /at least one child/);
  const nested = group([group([vectorMessage("add", [1, 2], 0x37)], { broker })], { broker }).addCompletionCallback(callback);
  await assert.rejects(nested.run(), /cannot contain a group/);
  assert.deepEqual(backend.keys(), [], "no barrier was created");
});

test("group rejects invalid children", () => {
  assert.throws(() => group([42 as unknown as Message]), ConfigurationError);
  assert.throws(() => group([]).addCompletionCallback("noop" as unknown as Message), /takes a message/);
});

test("group without callbacks adds no options", async () => {
  const recorder = new EnqueueRecorder();
  const broker = new StubBroker({ middleware: [recorder] });

  await group([vectorMessage("add", [1, 2], 0x38), vectorMessage("add", [3, 4], 0x39)], { broker }).run();

  assert.equal(recorder.enqueued.length, 2);
  for (const message of recorder.enqueued) {
    assert.deepEqual(message.options, {});
  }
});

test("group run delays every child", async () => {
  const recorder = new EnqueueRecorder();
  const broker = new StubBroker({ middleware: [recorder] });
  const children = [
    vectorMessage("add", [1, 2], 0x3a),
    pipeline([vectorMessage("add", [5], 0x3b), vectorMessage("add", [6], 0x3c)]),
    group([vectorMessage("add", [7, 8], 0x3d)]),
  ];

  await group(children, { broker }).run({ delay: 1000 });

  assert.deepEqual(
    recorder.enqueued.map((message) => [message.messageId, message.queueName]),
    [
      [vectorId(0x3a), "default.DQ"],
      [vectorId(0x3b), "default.DQ"],
      [vectorId(0x3d), "default.DQ"],
    ],
    "inner pipelines and groups run on the outer group's broker with its delay",
  );
});

for (const storage of storages) {
  test(`group callback fires once after children (${storage.name})`, async () => {
    const barrierStorage = storage.create();
    const fixture = createFixture(barrierStorage.backend);
    const events: string[] = [];
    const square = actor(
      async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 5 * n));
        events.push(`square ${n}`);
        return n * n;
      },
      { broker: fixture.broker, actorName: "square" },
    );
    const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });
    const finished = actor(
      (label: string) => {
        events.push(`finished ${label}`);
      },
      { broker: fixture.broker, actorName: "finished" },
    );
    const id = barrierStorage.newId();

    try {
      await fixture.worker.start();
      const work = group([square.message(2), square.message(3), pipeline([square.message(4), add.message(1)])], { broker: fixture.broker });
      work.addCompletionCallback(finished.message("group-done"));
      await work.run({ completionId: id });

      assert.deepEqual(await work.getResults({ block: true, timeout: 10_000 }), [4, 9, 17], "results as in groups.json");
      await fixture.broker.join("default", { timeout: 10_000 });
      await fixture.worker.join();

      assert.deepEqual(
        events.filter((event) => event.startsWith("finished")),
        ["finished group-done"],
        "the callback ran exactly once",
      );
      assert.equal(events.at(-1), "finished group-done", "the callback ran after every child");
      const state = await barrierStorage.read(id);
      assert.equal(state.value, "1", "the barrier stays at 1 once cleared");
      assert.deepEqual(state.events, ["x"]);
      assert.ok(state.pttl !== null, "the barrier key exists");
      assert.ok(state.pttl > 0, `pttl ${state.pttl}`);
      assert.ok(state.pttl <= DEFAULT_BARRIER_TTL, `pttl ${state.pttl}`);

      const callback = work.completionCallbacks[0];
      assert.deepEqual(
        fixture.recorder.withId(callback?.messageId ?? "").map((message) => message.queueName),
        ["default"],
        "the callback was enqueued once, with its stored id and no delay",
      );
      assert.equal(await work.completedCount(), 3);
      assert.equal(await work.isCompleted(), true);
    } finally {
      await fixture.stop();
      await barrierStorage.cleanup();
    }
  });

  test(`group callback skipped when child fails (${storage.name})`, async () => {
    const logs = captureLogs();
    const barrierStorage = storage.create();
    const fixture = createFixture(barrierStorage.backend);
    const calls: string[] = [];
    const square = actor((n: number) => n * n, { broker: fixture.broker, actorName: "square" });
    const broken = actor(
      () => {
        throw new Error("child failed");
      },
      { broker: fixture.broker, actorName: "broken", maxRetries: 0 },
    );
    const finished = actor(
      () => {
        calls.push("finished");
      },
      { broker: fixture.broker, actorName: "finished" },
    );
    const id = barrierStorage.newId();

    try {
      await fixture.worker.start();
      const work = group([square.message(2), broken.message(), square.message(3)], { broker: fixture.broker });
      work.addCompletionCallback(finished.message());
      await work.run({ completionId: id });
      await fixture.broker.join("default", { timeout: 10_000, failFast: false });
      await fixture.worker.join();

      assert.deepEqual(calls, [], "the callback never ran");
      const state = await barrierStorage.read(id);
      assert.equal(state.value, "1", "two of three parties arrived");
      assert.equal(state.events, null, "the barrier never cleared");
      await assert.rejects(work.getResults(), ResultFailureError);
    } finally {
      await fixture.stop();
      await barrierStorage.cleanup();
      logs.restore();
    }
  });
}

test("group callback fires per child when barrier missing", async () => {
  const backend = new StubRateLimiterBackend();
  const fixture = createFixture(backend);
  let callbacks = 0;
  const square = actor((n: number) => n * n, { broker: fixture.broker, actorName: "square" });
  const finished = actor(
    () => {
      callbacks += 1;
    },
    { broker: fixture.broker, actorName: "finished" },
  );

  try {
    const work = group([square.message(2), square.message(3)], { broker: fixture.broker }).addCompletionCallback(finished.message());
    await work.run();
    // An expired barrier looks the same as a deleted one.
    backend.clear();
    await fixture.worker.start();
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.equal(callbacks, 2, "each finishing child found the barrier cleared");
  } finally {
    await fixture.stop();
  }
});

test("group results keep child order", async () => {
  const fixture = createFixture(new StubRateLimiterBackend());
  const slow = actor(
    async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    },
    { broker: fixture.broker, actorName: "slow" },
  );

  try {
    await fixture.worker.start();
    const work = await group([slow.message(60), slow.message(1), slow.message(30), pipeline([slow.message(2), slow.message(3)])], {
      broker: fixture.broker,
    }).run();

    assert.deepEqual(await work.getResults({ block: true, timeout: 10_000 }), [60, 1, 30, 3]);
    await work.wait({ timeout: 1000 });
  } finally {
    await fixture.stop();
  }
});

test("group nests inner group results", async () => {
  const fixture = createFixture(new StubRateLimiterBackend());
  const double = actor((n: number) => n * 2, { broker: fixture.broker, actorName: "double" });

  try {
    await fixture.worker.start();
    const work = await group([double.message(1), group([double.message(2), double.message(3)])], { broker: fixture.broker }).run();

    assert.deepEqual(await work.getResults({ block: true, timeout: 10_000 }), [2, [4, 6]]);
    assert.equal(await work.completedCount(), 2);
  } finally {
    await fixture.stop();
  }
});

test("group wait times out without worker", async () => {
  const fixture = createFixture(new StubRateLimiterBackend());
  const double = actor((n: number) => n * 2, { broker: fixture.broker, actorName: "double" });

  try {
    const work = await group([double.message(1)], { broker: fixture.broker }).run();

    await assert.rejects(work.wait({ timeout: 50 }), ResultTimeoutError);
    assert.equal(await work.completedCount(), 0);
    assert.equal(await work.isCompleted(), false);
  } finally {
    await fixture.stop();
  }
});

test("GroupCallbacks rejects invalid options", () => {
  assert.throws(() => new GroupCallbacks({ backend: {} as unknown as RateLimiterBackend }), /rate-limiter backend/);
  assert.throws(() => new GroupCallbacks({ backend: new StubRateLimiterBackend(), barrierTtl: 0 }), /barrierTtl/);
});
