import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";

import { Redis } from "ioredis";

import { ConfigurationError, ConnectionFailedError, DecodeError, SkipMessage } from "../../src/errors.js";
import { ResultError, ResultFailureError, ResultMissingError, ResultTimeoutError, type ResultAddress } from "../../src/results/index.js";
import { RedisBackend } from "../../src/results/backends/redis.js";
import { captureLogs } from "../helpers/logs.js";
import { RawMonitor } from "../helpers/redis-monitor.js";
import { addressOf, resultCase, resultsVector } from "./vector.js";

const REDIS_URL = "redis://127.0.0.1:6379/0";
const raw = new Redis(REDIS_URL, { lazyConnect: true });

after(async () => {
  await raw.quit();
});

class ValueError extends Error {
  override name = "ValueError";
}

/** Creates a backend with a namespace of its own, and records the keys a test creates so that `cleanup()` deletes them. */
function createFixture(): { backend: RedisBackend; connectionName: string; keyOf(message: ResultAddress): string; cleanup(): Promise<void> } {
  // Duplicated connections inherit the name, so CLIENT LIST shows this backend's blocked reads.
  const connectionName = `melo-test-results-${randomUUID()}`;
  const backend = new RedisBackend({ url: REDIS_URL, namespace: connectionName, redisOptions: { connectionName } });
  const keys = new Set<string>();

  return {
    backend,
    connectionName,
    keyOf(message) {
      const key = backend.buildMessageKey(message);
      keys.add(key);
      return key;
    },
    async cleanup() {
      if (keys.size > 0) {
        await raw.del(...keys);
      }
      await backend.close();
    },
  };
}

async function readList(key: string): Promise<string[]> {
  const items = await raw.lrangeBuffer(key, 0, -1);
  return items.map((item) => item.toString("utf8"));
}

/** Writes bytes the way Python's RedisBackend stores them. */
async function writeRaw(key: string, value: string, ttl = 600_000): Promise<void> {
  await raw.multi().del(key).lpush(key, value).pexpire(key, ttl).exec();
}

test("redis stores success values byte-exact", async () => {
  const fixture = createFixture();
  try {
    for (const name of ["success_dict", "success_none"]) {
      const entry = resultCase(name);
      const message = addressOf(entry.message);
      const key = fixture.keyOf(message);
      const value = entry.get_result.ok ? entry.get_result.value : undefined;

      await fixture.backend.storeResult(message, value, 600_000);

      assert.equal(await raw.type(key), entry.redis_type, name);
      assert.deepEqual(await readList(key), entry.redis_list, name);
    }
  } finally {
    await fixture.cleanup();
  }
});

test("redis stores undefined as null", async () => {
  const fixture = createFixture();
  try {
    const message = addressOf(resultCase("success_none").message);
    await fixture.backend.storeResult(message, undefined, 600_000);
    assert.deepEqual(await readList(fixture.keyOf(message)), ["null"]);
  } finally {
    await fixture.cleanup();
  }
});

test("redis stores failure envelopes byte-exact", async () => {
  const fixture = createFixture();
  try {
    const exception = resultCase("failure_exception");
    const exceptionMessage = addressOf(exception.message);
    await fixture.backend.storeFailure(exceptionMessage, new ValueError("boom é"), 600_000);
    assert.deepEqual(await readList(fixture.keyOf(exceptionMessage)), exception.redis_list);

    const skip = resultCase("age_limit_skip");
    const skipMessage = addressOf(skip.message);
    await fixture.backend.storeFailure(skipMessage, new SkipMessage("Message age limit exceeded"), 600_000);
    assert.deepEqual(await readList(fixture.keyOf(skipMessage)), skip.redis_list);
  } finally {
    await fixture.cleanup();
  }
});

test("redis sets TTL within vector bounds", async () => {
  const fixture = createFixture();
  try {
    for (const [name, ttl] of [["success_dict", 600_000], ["custom_result_ttl", 5000]] as const) {
      const entry = resultCase(name);
      const message = addressOf(entry.message);
      await fixture.backend.storeResult(message, entry.get_result.ok ? entry.get_result.value : null, ttl);

      const pttl = await raw.pttl(fixture.keyOf(message));
      assert.ok(pttl <= ttl, `${name}: PTTL ${pttl} exceeds the TTL ${ttl}`);
      assert.ok(pttl > 0, `${name}: PTTL ${pttl} means no expiry was set`);
      // Python read its PTTL shortly after storing, so it confirms the TTL this test stores with.
      assert.ok(entry.pttl_ms_when_read <= ttl, `${name}: vector PTTL ${entry.pttl_ms_when_read} exceeds ${ttl}`);
      assert.ok(entry.pttl_ms_when_read > ttl * 0.9, `${name}: vector PTTL ${entry.pttl_ms_when_read} is not near ${ttl}`);
    }

    assert.deepEqual(await readList(fixture.keyOf(addressOf(resultCase("custom_result_ttl").message))), resultCase("custom_result_ttl").redis_list);
  } finally {
    await fixture.cleanup();
  }
});

test("redis reads values Python stored", async () => {
  const fixture = createFixture();
  try {
    for (const entry of resultsVector.results) {
      const message = addressOf(entry.message);
      const [stored = ""] = entry.redis_list;
      await writeRaw(fixture.keyOf(message), stored);

      const expected = entry.get_result;
      if (expected.ok) {
        assert.deepEqual(await fixture.backend.getResult(message), expected.value, entry.case);
        continue;
      }

      await assert.rejects(fixture.backend.getResult(message), (error: unknown) => {
        assert.ok(error instanceof ResultFailureError, entry.case);
        assert.equal(error.message, expected.str);
        assert.equal(error.origExcType, expected.orig_exc_type);
        assert.equal(error.origExcMsg, expected.orig_exc_msg);
        assert.equal(error.code, "MELO_ERR_RESULT_FAILURE");
        return true;
      });
    }
  } finally {
    await fixture.cleanup();
  }
});

test("redis blocking read waits for later store", async () => {
  const fixture = createFixture();
  try {
    const message = addressOf(resultCase("success_dict").message, randomUUID());
    const key = fixture.keyOf(message);
    const reading = fixture.backend.getResult(message, { block: true, timeout: 5000 });

    // The read must be blocked in BRPOPLPUSH before the value arrives.
    await waitForBlockedClients(fixture.connectionName);
    await fixture.backend.storeResult(message, resultsVector.blocking_get.value, 600_000);

    assert.deepEqual(await reading, resultsVector.blocking_get.value);
    assert.equal(await raw.llen(key), 1);
    assert.deepEqual(await readList(key), resultsVector.blocking_get.list_after);
  } finally {
    await fixture.cleanup();
  }
});

test("redis blocking read leaves element readable", async () => {
  const fixture = createFixture();
  try {
    const message = addressOf(resultCase("success_dict").message);
    const key = fixture.keyOf(message);
    await writeRaw(key, resultsVector.blocking_get.list_before[0] ?? "");

    assert.deepEqual(await fixture.backend.getResult(message, { block: true, timeout: 2000 }), resultsVector.blocking_get.value);
    assert.deepEqual(await readList(key), resultsVector.blocking_get.list_after);
    assert.deepEqual(await fixture.backend.getResult(message, { block: true, timeout: 2000 }), resultsVector.blocking_get.value);
    assert.deepEqual(await fixture.backend.getResult(message), resultsVector.blocking_get.value);
  } finally {
    await fixture.cleanup();
  }
});

test("redis read commands match Python", async () => {
  const fixture = createFixture();
  // A plain-socket MONITOR: ioredis 6.1's monitor() breaks when other clients are busy.
  const monitor = await RawMonitor.start();
  const message = addressOf(resultsVector.missing_result.message, randomUUID());
  const key = fixture.keyOf(message);
  const commands = (): string[][] =>
    monitor.commands.filter((command) => command.args.includes(key)).map((command) => command.args.map((arg) => arg.toLowerCase()));

  try {
    await assert.rejects(fixture.backend.getResult(message), ResultMissingError);
    await assert.rejects(fixture.backend.getResult(message, { block: true, timeout: 500 }), ResultTimeoutError);
    await assert.rejects(fixture.backend.getResult(message, { block: true, timeout: 1999 }), ResultTimeoutError);
    await fixture.backend.storeResult(message, 1, 600_000);
    await raw.ping();

    assert.deepEqual(commands(), [
      ["lindex", key, "0"],
      ["rpoplpush", key, key],
      ["brpoplpush", key, key, "1"],
      ["del", key],
      ["lpush", key, "1"],
      ["pexpire", key, "600000"],
    ]);
  } finally {
    monitor.close();
    await fixture.cleanup();
  }
});

test("redis missing result rejects", async () => {
  const fixture = createFixture();
  try {
    const message = addressOf(resultsVector.missing_result.message, randomUUID());
    fixture.keyOf(message);

    await assert.rejects(fixture.backend.getResult(message), (error: unknown) => {
      assert.ok(error instanceof ResultMissingError);
      assert.equal(error.code, "MELO_ERR_RESULT_MISSING");
      assert.equal(error.messageId, message.messageId);
      return true;
    });
    await assert.rejects(fixture.backend.getResult(message, { block: true, timeout: 500 }), (error: unknown) => {
      assert.ok(error instanceof ResultTimeoutError);
      assert.equal(error.code, "MELO_ERR_RESULT_TIMEOUT");
      assert.match(error.message, /checked once without waiting/);
      return true;
    });
    await assert.rejects(fixture.backend.getResult(message, { block: true, timeout: 1000 }), ResultTimeoutError);
  } finally {
    await fixture.cleanup();
  }
});

test("redis concurrent blocking reads each resolve", async () => {
  const fixture = createFixture();
  try {
    const messages = [0, 1, 2].map(() => ({ queueName: "spec_results", actorName: "compute", messageId: randomUUID() }));
    for (const message of messages) {
      fixture.keyOf(message);
    }

    const readings = messages.map((message) => fixture.backend.getResult(message, { block: true, timeout: 5000 }));
    await waitForBlockedClients(fixture.connectionName, messages.length);
    for (const [index, message] of messages.entries()) {
      await fixture.backend.storeResult(message, index, 600_000);
    }

    assert.deepEqual(await Promise.all(readings), [0, 1, 2]);
  } finally {
    await fixture.cleanup();
  }
});

test("redis close rejects blocked reads", async () => {
  const fixture = createFixture();
  try {
    const message = { queueName: "spec_results", actorName: "compute", messageId: randomUUID() };
    fixture.keyOf(message);
    const reading = fixture.backend.getResult(message, { block: true, timeout: 5000 });
    await waitForBlockedClients(fixture.connectionName);

    await fixture.backend.close();
    await assert.rejects(reading, ConnectionFailedError);

    // A closed backend reconnects on demand.
    await fixture.backend.storeResult(message, "again", 600_000);
    assert.equal(await fixture.backend.getResult(message), "again");
  } finally {
    await fixture.cleanup();
  }
});

test("redis rejects keys of another type", async () => {
  const fixture = createFixture();
  try {
    const message = { queueName: "spec_results", actorName: "compute", messageId: randomUUID() };
    const key = fixture.keyOf(message);
    await raw.set(key, "not a list", "PX", 60_000);

    await assert.rejects(fixture.backend.getResult(message), (error: unknown) => {
      assert.ok(error instanceof ResultError);
      assert.match(error.message, /WRONGTYPE/);
      return true;
    });
  } finally {
    await fixture.cleanup();
  }
});

test("redis rejects non-JSON values", async () => {
  const fixture = createFixture();
  try {
    const message = { queueName: "spec_results", actorName: "compute", messageId: randomUUID() };
    await writeRaw(fixture.keyOf(message), "\x80\x04\x95pickle");
    await assert.rejects(fixture.backend.getResult(message), DecodeError);
  } finally {
    await fixture.cleanup();
  }
});

test("redis unreachable server fails without password", async () => {
  const logs = captureLogs();
  // Port 1 on loopback has no server, so every connection attempt is refused.
  const backend = new RedisBackend({ url: "redis://user:s3cret-pw@127.0.0.1:1/0" });
  try {
    assert.equal(backend.displayUrl, "redis://user:***@127.0.0.1:1/0");
    await assert.rejects(backend.getResult({ queueName: "q", actorName: "a", messageId: "m" }), (error: unknown) => {
      assert.ok(error instanceof ConnectionFailedError);
      assert.ok(!error.message.includes("s3cret-pw"), error.message);
      assert.match(error.message, /127\.0\.0\.1:1/);
      return true;
    });

    for (const record of logs.records) {
      assert.ok(!JSON.stringify(record).includes("s3cret-pw"), record.message);
    }
  } finally {
    await backend.close();
    logs.restore();
  }
});

test("redis backend accepts an existing client", async () => {
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  const backend = new RedisBackend({ client, namespace: `melo-test-results-${randomUUID()}` });
  const message = { queueName: "spec_results", actorName: "compute", messageId: randomUUID() };
  const key = backend.buildMessageKey(message);
  try {
    await backend.storeResult(message, [1, 2], 600_000);
    assert.deepEqual(await backend.getResult(message, { block: true, timeout: 1000 }), [1, 2]);

    await backend.close();
    assert.equal(client.status, "ready");
  } finally {
    await raw.del(key);
    await backend.close();
    await client.quit();
  }
});

test("redis backend rejects unsupported redisOptions", () => {
  assert.throws(
    () => new RedisBackend({ redisOptions: { enableAutoPipelining: true } as never }),
    (error: unknown) =>
      error instanceof ConfigurationError &&
      /Unsupported RedisBackend option redisOptions\.enableAutoPipelining/.test(error.message) &&
      /pass it as `client`/.test(error.message),
  );
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  assert.throws(
    () => new RedisBackend({ client, url: REDIS_URL }),
    (error: unknown) => error instanceof ConfigurationError && /either `client` or `url`/.test(error.message),
  );
  client.disconnect();
  assert.throws(
    () => new RedisBackend({ client: { options: {} } as never }),
    (error: unknown) => error instanceof ConfigurationError && /expected an ioredis client/.test(error.message),
  );
});

/** Waits until `count` connections called `connectionName` are blocked in BRPOPLPUSH, so a test stores only after the reads began. */
async function waitForBlockedClients(connectionName: string, count = 1): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const clients = (await raw.client("LIST")) as string;
    const blocked = clients.split("\n").filter((line) => line.includes(`name=${connectionName} `) && line.includes("cmd=brpoplpush"));
    if (blocked.length >= count) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out waiting for ${count} Redis connection(s) named ${connectionName} to block in BRPOPLPUSH.`);
}
