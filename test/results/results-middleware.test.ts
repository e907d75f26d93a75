import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";

import { Redis } from "ioredis";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { ConfigurationError, SkipMessage } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { RedisBackend } from "../../src/results/backends/redis.js";
import {
  ResultFailureError,
  ResultMissingError,
  Results,
  StubBackend,
  type ResultBackend,
  type ResultsOptions,
} from "../../src/results/index.js";
import { currentMessage } from "../../src/worker/context.js";
import type { MessageProxy } from "../../src/worker/message-proxy.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";
import { createStubWorker, type StubFixture } from "../helpers/stub.js";
import { expectedFailure, resultCase } from "./vector.js";

const REDIS_URL = "redis://127.0.0.1:6379/0";
const raw = new Redis(REDIS_URL, { lazyConnect: true });

after(async () => {
  await raw.quit();
});

interface BackendKind {
  readonly name: string;
  create(): { backend: ResultBackend; cleanup: () => Promise<void> };
}

const backendKinds: BackendKind[] = [
  {
    name: "stub",
    create: () => ({ backend: new StubBackend(), cleanup: async () => {} }),
  },
  {
    name: "redis",
    create: () => {
      // Prefix keys let cleanup find every key this test created.
      const namespace = `melo-test-results-${randomUUID()}`;
      const backend = new RedisBackend({ url: REDIS_URL, namespace, useNamespacePrefixKeys: true });
      return {
        backend,
        async cleanup() {
          const keys = await raw.keys(`${namespace}:*`);
          if (keys.length > 0) {
            await raw.del(...keys);
          }
          await backend.close();
        },
      };
    },
  },
];

class BoomError extends Error {
  override name = "BoomError";
}

/** Skips every message; with `failWith` it also fails it, as the age limit does. */
class SkipAll extends Middleware {
  constructor(private readonly failWith?: Error) {
    super();
  }

  override beforeProcessMessage(_broker: Broker, message: MessageProxy): void {
    if (this.failWith !== undefined) {
      message.fail(this.failWith);
    }
    throw new SkipMessage("skipped by test");
  }
}

interface Harness {
  fixture: StubFixture;
  backend: ResultBackend;
  logs: LogCapture;
  /** Waits until the queue is drained and every hook has run. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

function createHarness(kind: BackendKind, options: Omit<ResultsOptions, "backend"> = {}, extra: Middleware[] = []): Harness {
  const logs = captureLogs();
  const { backend, cleanup } = kind.create();
  const fixture = createStubWorker({
    middleware: [new Retries({ minBackoff: 10, maxBackoff: 20 }), ...extra, new Results({ backend, ...options })],
  });
  // Consumed even when no local actor uses it, as for messages of actors this worker lacks.
  fixture.broker.declareQueue("default");

  return {
    fixture,
    backend,
    logs,
    async settle() {
      await fixture.broker.join("default", { timeout: 10_000, failFast: false });
      await fixture.worker.join();
    },
    async stop() {
      try {
        await fixture.stop();
        await cleanup();
      } finally {
        logs.restore();
      }
    },
  };
}

function unexpectedFailures(logs: LogCapture): string[] {
  return logs.records.filter((record) => record.message.includes("Unexpected failure")).map((record) => record.message);
}

for (const kind of backendKinds) {
  test(`results stores success on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const add = actor((a: number, b: number) => ({ sum: a + b, items: [1, 2.5, null, true, "é"] }), {
      broker: harness.fixture.broker,
      actorName: "compute",
      storeResults: true,
    });
    const nothing = actor(() => undefined, { broker: harness.fixture.broker, actorName: "returns_none", storeResults: true });

    try {
      await harness.fixture.worker.start();
      const sent = await add.send(40, 2);
      const none = await nothing.send();

      // No backend given: the Results middleware of the broker that enqueued the message is used.
      assert.deepEqual(await sent.getResult({ block: true, timeout: 5000 }), { sum: 42, items: [1, 2.5, null, true, "é"] });
      assert.equal(await none.getResult({ block: true, timeout: 5000 }), null);
      assert.deepEqual(await sent.getResult({ backend: harness.backend }), await harness.backend.getResult(sent));
    } finally {
      await harness.stop();
    }
  });

  test(`results stores failure after retries on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const readsBeforeFinal: string[] = [];
    let attempts = 0;
    const explode = actor(
      async () => {
        attempts += 1;
        const message = currentMessage();
        assert.ok(message !== undefined);
        try {
          await harness.backend.getResult(message);
          readsBeforeFinal.push("stored");
        } catch (error) {
          readsBeforeFinal.push(error instanceof ResultMissingError ? "missing" : String(error));
        }
        throw new BoomError("boom é");
      },
      { broker: harness.fixture.broker, actorName: "explode", storeResults: true, maxRetries: 2 },
    );

    try {
      await harness.fixture.worker.start();
      const sent = await explode.send();

      await assert.rejects(sent.getResult({ block: true, timeout: 10_000 }), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, String(error));
        assert.equal(error.origExcType, "BoomError");
        assert.equal(error.origExcMsg, "boom é");
        assert.equal(error.message, "actor raised BoomError: boom é");
        return true;
      });
      assert.equal(attempts, 3);
      assert.deepEqual(readsBeforeFinal, ["missing", "missing", "missing"]);
      assert.equal(harness.fixture.broker.deadLettersOf("default").length, 1);
    } finally {
      await harness.stop();
    }
  });

  test(`results message option overrides actor on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const storing = actor(() => "kept", { broker: harness.fixture.broker, actorName: "storing", storeResults: true });
    const quiet = actor(() => "also kept", { broker: harness.fixture.broker, actorName: "quiet" });

    try {
      await harness.fixture.worker.start();
      const optedOut = await storing.sendWithOptions({ storeResults: false });
      const optedIn = await quiet.sendWithOptions({ storeResults: true });
      const truthy = await quiet.sendWithOptions({ storeResults: 1 });
      const emptyObject = await quiet.sendWithOptions({ storeResults: {} });
      await harness.settle();

      await assert.rejects(optedOut.getResult(), ResultMissingError);
      assert.equal(await optedIn.getResult(), "also kept");
      assert.equal(await truthy.getResult(), "also kept");
      await assert.rejects(emptyObject.getResult(), ResultMissingError);
    } finally {
      await harness.stop();
    }
  });

  test(`results middleware default stores on ${kind.name}`, async () => {
    const harness = createHarness(kind, { storeResults: true });
    const plain = actor(() => 5, { broker: harness.fixture.broker, actorName: "plain" });

    try {
      await harness.fixture.worker.start();
      const sent = await plain.send();
      assert.equal(await sent.getResult({ block: true, timeout: 5000 }), 5);
    } finally {
      await harness.stop();
    }
  });

  test(`results stores null after skip on ${kind.name}`, async () => {
    const harness = createHarness(kind, {}, [new SkipAll()]);
    const skipped = actor(() => "never", { broker: harness.fixture.broker, actorName: "skipped", storeResults: true });

    try {
      await harness.fixture.worker.start();
      const sent = await skipped.send();
      assert.equal(await sent.getResult({ block: true, timeout: 5000 }), null);
    } finally {
      await harness.stop();
    }
  });

  test(`results stores failed skip on ${kind.name}`, async () => {
    const harness = createHarness(kind, {}, [new SkipAll(new SkipMessage("Message age limit exceeded"))]);
    const tooOld = actor(() => "never", { broker: harness.fixture.broker, actorName: "too_old", storeResults: true });

    try {
      await harness.fixture.worker.start();
      const sent = await tooOld.send();
      await assert.rejects(sent.getResult({ block: true, timeout: 5000 }), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, String(error));
        const expected = expectedFailure("age_limit_skip");
        assert.equal(error.message, expected.str);
        assert.equal(error.origExcType, expected.orig_exc_type);
        assert.equal(error.origExcMsg, expected.orig_exc_msg);
        return true;
      });
    } finally {
      await harness.stop();
    }
  });

  test(`results stores unencodable result as failure on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const dated = actor(() => new Date(0), { broker: harness.fixture.broker, actorName: "dated", storeResults: true });

    try {
      await harness.fixture.worker.start();
      const sent = await dated.send();
      await assert.rejects(sent.getResult({ block: true, timeout: 5000 }), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, String(error));
        assert.equal(error.origExcType, "EncodeError");
        assert.match(error.origExcMsg, /Date/);
        return true;
      });
      await harness.settle();
      assert.equal(harness.fixture.broker.deadLettersOf("default").length, 0);
    } finally {
      await harness.stop();
    }
  });

  test(`results FC-05 unknown actor fails waiting caller on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const { broker } = harness.fixture;

    try {
      await harness.fixture.worker.start();
      // The producer's actor `render_report` is not declared in this worker.
      const sent = await broker.enqueue(
        new Message({ queueName: "default", actorName: "render_report", args: [], options: { store_results: true } }),
      );

      await assert.rejects(sent.getResult({ block: true, timeout: 10_000 }), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, `expected a stored failure, got ${String(error)}`);
        assert.equal(error.origExcType, "ActorNotFound");
        assert.match(error.origExcMsg, /render_report/);
        return true;
      });

      await harness.settle();
      assert.equal(broker.deadLettersOf("default").length, 1);
      assert.equal(harness.logs.find("error", "render_report").length, 1);
      assert.deepEqual(unexpectedFailures(harness.logs), []);
    } finally {
      await harness.stop();
    }
  });

  test(`results FC-05 stores nothing without store_results on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const { broker } = harness.fixture;

    try {
      await harness.fixture.worker.start();
      const sent = await broker.enqueue(new Message({ queueName: "default", actorName: "render_report", args: [] }));
      await harness.settle();

      assert.equal(broker.deadLettersOf("default").length, 1);
      await assert.rejects(sent.getResult(), ResultMissingError);
      assert.deepEqual(unexpectedFailures(harness.logs), []);
    } finally {
      await harness.stop();
    }
  });

  test(`results FC-05 empty actor name never throws on ${kind.name}`, async () => {
    const harness = createHarness(kind);
    const { broker } = harness.fixture;
    const withResults = new Message({ queueName: "default", actorName: "", args: [], options: { store_results: true } });
    const withoutResults = new Message({ queueName: "default", actorName: "", args: [] });

    try {
      await harness.fixture.worker.start();
      broker.publishBody("default", withResults.encode());
      broker.publishBody("default", withoutResults.encode());
      await harness.settle();

      assert.equal(broker.deadLettersOf("default").length, 2);
      assert.deepEqual(unexpectedFailures(harness.logs), []);
      await assert.rejects(withResults.getResult({ backend: harness.backend }), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, String(error));
        assert.equal(error.origExcType, "ActorNotFound");
        return true;
      });
      await assert.rejects(withoutResults.getResult({ backend: harness.backend }), ResultMissingError);
    } finally {
      await harness.stop();
    }
  });
}

test("results stores with message TTL on redis", async () => {
  const harness = createHarness(backendKinds[1]!);
  const short = actor(() => 7, { broker: harness.fixture.broker, actorName: "short_ttl", storeResults: true, resultTtl: 60_000 });

  try {
    await harness.fixture.worker.start();
    const byActor = await short.send();
    const byMessage = await short.sendWithOptions({ resultTtl: 5000 });
    await harness.settle();

    const actorTtl = await raw.pttl(harness.backend.buildMessageKey(byActor));
    const messageTtl = await raw.pttl(harness.backend.buildMessageKey(byMessage));
    assert.ok(actorTtl > 5000, `actor TTL gave PTTL ${actorTtl}`);
    assert.ok(actorTtl <= 60_000, `actor TTL gave PTTL ${actorTtl}`);
    assert.ok(messageTtl > 0, `message TTL gave PTTL ${messageTtl}`);
    assert.ok(messageTtl <= 5000, `message TTL gave PTTL ${messageTtl}`);
    assert.deepEqual(await raw.lrange(harness.backend.buildMessageKey(byMessage), 0, -1), resultCase("custom_result_ttl").redis_list);
  } finally {
    await harness.stop();
  }
});

test("results stores age-limit envelope byte-exact on redis", async () => {
  const harness = createHarness(backendKinds[1]!, {}, [new SkipAll(new SkipMessage("Message age limit exceeded"))]);
  const tooOld = actor(() => "never", { broker: harness.fixture.broker, actorName: "too_old", storeResults: true });

  try {
    await harness.fixture.worker.start();
    const sent = await tooOld.send();
    await harness.settle();

    assert.deepEqual(await raw.lrange(harness.backend.buildMessageKey(sent), 0, -1), resultCase("age_limit_skip").redis_list);
  } finally {
    await harness.stop();
  }
});

test("results warns once per actor about discarded values", async () => {
  const harness = createHarness(backendKinds[0]!);
  const chatty = actor(() => "lost", { broker: harness.fixture.broker, actorName: "chatty" });
  const silent = actor(() => undefined, { broker: harness.fixture.broker, actorName: "silent" });

  try {
    await harness.fixture.worker.start();
    await chatty.send();
    await chatty.send();
    await silent.send();
    await harness.settle();

    const warnings = harness.logs.find("warn", "returned a value that is not stored");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.fields["actorName"], "chatty");
  } finally {
    await harness.stop();
  }
});

test("results falls back on invalid message TTL", async () => {
  const harness = createHarness(backendKinds[0]!);
  const odd = actor(() => 1, { broker: harness.fixture.broker, actorName: "odd", storeResults: true });

  try {
    await harness.fixture.worker.start();
    const sent = await odd.sendWithOptions({ resultTtl: "soon" });
    await harness.settle();

    assert.equal(await sent.getResult(), 1);
    assert.equal(harness.logs.find("warn", "invalid result TTL").length, 1);
  } finally {
    await harness.stop();
  }
});

test("getResult without Results middleware rejects", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker();
  const plain = actor(() => 1, { broker: fixture.broker, actorName: "plain" });

  try {
    // Creating a Results middleware elsewhere installs the lookup; this broker still has none.
    new Results({ backend: new StubBackend() });
    const sent = await plain.send();
    await assert.rejects(sent.getResult(), (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, /no Results middleware/);
      return true;
    });
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("Results rejects invalid options", () => {
  // A backend-shaped object that is no ResultBackend, as a JavaScript caller might pass.
  const notABackend: unknown = { getResult: () => Promise.resolve(null) };
  assert.throws(() => new Results({ backend: notABackend as ResultBackend }), ConfigurationError);
  assert.throws(() => new Results({ backend: new StubBackend(), resultTtl: 0 }), ConfigurationError);
});

test("Results options are valid actor options", () => {
  const fixture = createStubWorker({ middleware: [new Results({ backend: new StubBackend() })] });
  assert.doesNotThrow(() => actor(() => 1, { broker: fixture.broker, actorName: "ok", storeResults: true, resultTtl: 1000 }));
  // @ts-expect-error Actor options are camelCase; the broker rejects snake_case names at run time too.
  assert.throws(() => actor(() => 1, { broker: fixture.broker, actorName: "bad", store_results: true }), ConfigurationError);
});
