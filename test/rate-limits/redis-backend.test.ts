/**
 * The Redis rate-limiter backend against the real server: the exact commands
 * it sends (watched with MONITOR), optimistic transactions under contention,
 * connection failures and its connection pool.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Redis } from "ioredis";

import type { BackendRedisClient, DedicatedConnectionOptions } from "../../src/brokers/redis/backend-client.js";
import { parseRedisUrl } from "../../src/brokers/redis/connection-url.js";
import { RespClient } from "../../src/brokers/redis/resp/resp-client.js";
import { ConfigurationError, ConnectionFailedError } from "../../src/errors.js";
import { RateLimiterBackendError } from "../../src/rate-limits/index.js";
import { RedisRateLimiterBackend } from "../../src/rate-limits/backends/redis.js";
import { captureLogs } from "../helpers/logs.js";
import { RawMonitor } from "../helpers/redis-monitor.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";
import { REDIS_URL, createBackendFixture, sleep, waitFor } from "./support.js";

/** Commands a backend sends for its operations; connection set-up commands (HELLO, INFO, CLIENT…) are left out. */
const OPERATION_COMMANDS = new Set(["SET", "GET", "MGET", "WATCH", "UNWATCH", "MULTI", "EXEC", "RPUSH", "PEXPIRE", "BRPOPLPUSH"]);

/** The clients an application can pass as `client`: an ioredis client, and the built-in client the backend otherwise creates itself. */
const CLIENT_KINDS: readonly (readonly [kind: string, create: (url: string) => BackendRedisClient])[] = [
  ["ioredis", (url) => new Redis(url, { lazyConnect: true })],
  ["built-in client", (url) => new RespClient({ ...parseRedisUrl(url).options, lazyConnect: true })],
];

/**
 * Makes every transaction connection that `client` duplicates call
 * `afterGet(key)` after each GET reply, so a test can change the key between
 * WATCH and EXEC as a competing client would.
 */
function interceptGets(client: BackendRedisClient, afterGet: (key: string) => Promise<void>): void {
  const duplicate = client.duplicate.bind(client);
  Object.assign(client, {
    duplicate: (override?: DedicatedConnectionOptions) => {
      const copy = duplicate(override);
      const get = copy.get.bind(copy);
      Object.assign(copy, {
        get: async (key: string) => {
          const value = await get(key);
          await afterGet(key);
          return value;
        },
      });
      return copy;
    },
  });
}

test("redis backend sends Python command sequences", async () => {
  const fixture = createBackendFixture("redis");
  const monitor = await RawMonitor.start();
  const seen = monitor.commands;

  try {
    const { backend, prefix } = fixture;
    const key = `${prefix}cmd`;
    const other = `${prefix}cmd@1`;
    const events = `${prefix}cmd@events`;

    assert.equal(await backend.add(key, 1, 900_000), true);
    assert.equal(await backend.incr(key, 1, 2, 900_000), true);
    assert.equal(await backend.incr(key, 1, 2, 900_000), false);
    assert.equal(await backend.decr(key, 1, 0, 900_000), true);
    assert.equal(await backend.incrAndSum(key, [key, other], 1, 5, 5000), true);
    await backend.waitNotify(events, 900_000);
    assert.equal(await backend.wait(events, 2500), true);
    assert.equal(await backend.wait(events), true);

    // MONITOR reports commands in the order the server ran them, so once the marker shows, everything before it has.
    const marker = `${prefix}marker`;
    const raw = new Redis(REDIS_URL);
    await raw.get(marker);
    await raw.quit();
    await waitFor(() => seen.some(({ args }) => args.includes(marker)), "MONITOR to report the marker");

    const ours = new Set(seen.filter(({ args }) => args.some((arg) => arg.startsWith(prefix)) && !args.includes(marker)).map(({ source }) => source));
    const commands = seen
      .filter(({ source, args }) => ours.has(source) && OPERATION_COMMANDS.has((args[0] ?? "").toUpperCase()))
      .map(({ args }) => [(args[0] ?? "").toUpperCase(), ...args.slice(1)].join(" ").replaceAll(prefix, "<p>"));

    assert.deepEqual(commands, [
      "SET <p>cmd 1 PX 900000 NX",
      "WATCH <p>cmd",
      "GET <p>cmd",
      "MULTI",
      "SET <p>cmd 2 PX 900000",
      "EXEC",
      "WATCH <p>cmd",
      "GET <p>cmd",
      "UNWATCH",
      "WATCH <p>cmd",
      "GET <p>cmd",
      "MULTI",
      "SET <p>cmd 1 PX 900000",
      "EXEC",
      "WATCH <p>cmd <p>cmd <p>cmd@1",
      "GET <p>cmd",
      "MGET <p>cmd <p>cmd@1",
      "MULTI",
      "SET <p>cmd 2 PX 5000",
      "EXEC",
      "MULTI",
      "RPUSH <p>cmd@events x",
      "PEXPIRE <p>cmd@events 900000",
      "EXEC",
      "BRPOPLPUSH <p>cmd@events <p>cmd@events 2",
      "BRPOPLPUSH <p>cmd@events <p>cmd@events 0",
    ]);
  } finally {
    monitor.close();
    await fixture.cleanup();
  }
});

for (const [kind, createClient] of CLIENT_KINDS) {
  test(`redis transaction retries after abort on ${kind}`, async () => {
    const raw = new Redis(REDIS_URL);
    const client = createClient(REDIS_URL);
    const key = `melo-test-rl-${randomUUID()}:retry`;
    let interferences = 2;
    interceptGets(client, async (read) => {
      if (read === key && interferences > 0) {
        interferences -= 1;
        await raw.incrby(key, 10);
      }
    });
    const backend = new RedisRateLimiterBackend({ client });
    const logs = captureLogs();

    try {
      assert.equal(await backend.incr(key, 1, 100, 60_000), true);
      assert.equal(await raw.get(key), "21", "two competing writes of 10 and this increment all count");
      assert.equal(logs.find("debug", `Transaction to increment key '${key}' aborted`).length, 2);

      // The retry reads the competing value again, so it refuses to cross the maximum.
      await raw.set(key, "0");
      interferences = 2;
      assert.equal(await backend.incr(key, 1, 15, 60_000), false);
      assert.equal(await raw.get(key), "20", "nothing is written over the maximum");
    } finally {
      logs.restore();
      await backend.close();
      await raw.del(key);
      await raw.quit();
      await client.quit();
    }
  });

  test(`redis transaction gives up after max attempts on ${kind}`, async () => {
    const raw = new Redis(REDIS_URL);
    const client = createClient(REDIS_URL);
    const key = `melo-test-rl-${randomUUID()}:contended`;
    let interfere = true;
    interceptGets(client, async (read) => {
      if (read === key && interfere) {
        await raw.incrby(key, 1);
      }
    });
    const backend = new RedisRateLimiterBackend({ client, maxTransactionAttempts: 3 });

    try {
      await assert.rejects(backend.decr(key, 1, -100, 60_000), (error: unknown) => {
        assert.ok(error instanceof RateLimiterBackendError);
        assert.equal(error.key, key);
        assert.match(error.message, /Failed to decrement key '.*' on Redis at redis:\/\/.*: other clients changed it during all 3 attempts\. Raise maxTransactionAttempts/);
        return true;
      });
      assert.equal(await raw.get(key), "3", "only the competing writes landed");

      interfere = false;
      assert.equal(await backend.decr(key, 1, -100, 60_000), true, "the backend works once the contention ends");
      assert.equal(await raw.get(key), "2");
    } finally {
      await backend.close();
      await raw.del(key);
      await raw.quit();
      await client.quit();
    }
  });

  test(`redis connection loss fails transaction then recovers on ${kind}`, async () => {
    const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 6379 });
    const raw = new Redis(REDIS_URL);
    const client = createClient(proxy.urlFor(REDIS_URL));
    const key = `melo-test-rl-${randomUUID()}:cut`;
    let cutAfterGet = true;
    interceptGets(client, async (read) => {
      if (read === key && cutAfterGet) {
        cutAfterGet = false;
        proxy.cut();
      }
    });
    const backend = new RedisRateLimiterBackend({ client });
    const logs = captureLogs();

    try {
      await raw.set(key, "5");
      await assert.rejects(backend.incr(key, 1, 10, 60_000), (error: unknown) => {
        assert.ok(error instanceof ConnectionFailedError, String(error));
        assert.match(error.message, /Failed to increment key '.*cut' on Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
        return true;
      });
      assert.equal(await raw.get(key), "5", "the cut transaction wrote nothing");

      assert.equal(await backend.incr(key, 1, 10, 60_000), true, "the next transaction opens a new connection");
      assert.equal(await raw.get(key), "6");
    } finally {
      logs.restore();
      await backend.close();
      client.disconnect();
      await proxy.close();
      await raw.del(key);
      await raw.quit();
    }
  });
}

test("redis transactions race without lost updates", async () => {
  const fixture = createBackendFixture("redis");
  try {
    const key = `${fixture.prefix}race`;
    const backends = [fixture.backend, fixture.peer()];
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, index) => (backends[index % 2] ?? fixture.backend).incr(key, 1, 1000, 60_000)),
    );

    assert.equal(results.filter(Boolean).length, 60);
    assert.equal((await fixture.snapshot()).get("race")?.value, "60");
  } finally {
    await fixture.cleanup();
  }
});

test("redis transactions race never exceed maximum", async () => {
  const fixture = createBackendFixture("redis");
  try {
    const key = `${fixture.prefix}capped`;
    const backends = [fixture.backend, fixture.peer()];
    const results = await Promise.all(Array.from({ length: 60 }, (_, index) => (backends[index % 2] ?? fixture.backend).incr(key, 1, 25, 60_000)));

    assert.equal(results.filter(Boolean).length, 25);
    assert.equal((await fixture.snapshot()).get("capped")?.value, "25");

    const sums = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        (backends[index % 2] ?? fixture.backend).incrAndSum(`${fixture.prefix}sum@2`, [`${fixture.prefix}sum@2`, `${fixture.prefix}sum@1`], 1, 10, 60_000),
      ),
    );
    assert.equal(sums.filter(Boolean).length, 10);
    assert.equal((await fixture.snapshot()).get("sum@2")?.value, "10");
  } finally {
    await fixture.cleanup();
  }
});

test("redis transaction pool caps connections", async () => {
  const connectionName = `melo-test-rl-pool-${randomUUID()}`;
  const fixture = createBackendFixture("redis", { redisOptions: { maxTransactionClients: 2, redisOptions: { connectionName } } });
  const raw = new Redis(REDIS_URL);
  try {
    const key = `${fixture.prefix}pool`;
    const results = await Promise.all(Array.from({ length: 20 }, () => fixture.backend.incr(key, 1, 100, 60_000)));
    assert.equal(results.filter(Boolean).length, 20);

    const clients = ((await raw.client("LIST")) as string).split("\n").filter((line) => line.includes(` name=${connectionName} `));
    assert.equal(clients.length, 2, `two transaction connections, no more:\n${clients.join("\n")}`);
  } finally {
    await raw.quit();
    await fixture.cleanup();
  }
});

test("redis counter rejects foreign data", async () => {
  const fixture = createBackendFixture("redis");
  const raw = new Redis(REDIS_URL);
  try {
    const text = `${fixture.prefix}text`;
    const list = `${fixture.prefix}list`;
    await raw.set(text, "twelve");
    await raw.rpush(list, "x");

    await assert.rejects(fixture.backend.incr(text, 1, 10, 1000), (error: unknown) => {
      assert.ok(error instanceof RateLimiterBackendError);
      assert.match(error.message, /Invalid counter "twelve" at key '.*text': a counter is a decimal integer/);
      return true;
    });
    await assert.rejects(fixture.backend.decr(list, 1, 0, 1000), (error: unknown) => {
      assert.ok(error instanceof RateLimiterBackendError);
      assert.match(error.message, /rejected the attempt to decrement key '.*list': WRONGTYPE/);
      return true;
    });
    await assert.rejects(fixture.backend.wait(text, 1000), /rejected the attempt to wait for an event on key '.*text': WRONGTYPE/);

    assert.equal(await fixture.backend.incr(`${fixture.prefix}fine`, 1, 10, 1000), true, "the backend still works");
  } finally {
    await raw.quit();
    await fixture.cleanup();
  }
});

test("redis backend connects on first use", async () => {
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 6379 });
  const backend = new RedisRateLimiterBackend({ url: proxy.urlFor(REDIS_URL) });
  const key = `melo-test-rl-${randomUUID()}:lazy`;
  try {
    await sleep(50);
    assert.equal(proxy.acceptedCount, 0, "the constructor must not connect");

    assert.equal(await backend.add(key, 1, 1000), true);
    assert.ok(proxy.acceptedCount >= 1);
  } finally {
    await backend.close();
    await proxy.close();
    const raw = new Redis(REDIS_URL);
    await raw.del(key);
    await raw.quit();
  }
});

test("redis unreachable server fails without password", async () => {
  const logs = captureLogs();
  // Port 1 on the loopback refuses connections.
  const backend = new RedisRateLimiterBackend({ url: "redis://user:s3cret-pass@127.0.0.1:1/0" });
  try {
    assert.equal(backend.displayUrl, "redis://user:***@127.0.0.1:1/0");
    for (const operation of [() => backend.add("k", 1, 1000), () => backend.incr("k", 1, 2, 1000)]) {
      await assert.rejects(operation(), (error: unknown) => {
        assert.ok(error instanceof ConnectionFailedError, String(error));
        assert.ok(!error.message.includes("s3cret-pass"), error.message);
        assert.match(error.message, /redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/0/);
        return true;
      });
    }
    assert.ok(logs.find("warn", "Connection to the rate-limiter backend").length >= 1, "the outage is logged");
    assert.ok(!JSON.stringify(logs.records).includes("s3cret-pass"), "no log line carries the password");
  } finally {
    logs.restore();
    await backend.close();
  }
});

test("redis backend rejects invalid options", () => {
  const client = new Redis(REDIS_URL, { lazyConnect: true });
  try {
    assert.throws(() => new RedisRateLimiterBackend({ client, url: REDIS_URL }), ConfigurationError);
    assert.throws(() => new RedisRateLimiterBackend({ maxTransactionAttempts: 0 }), ConfigurationError);
    assert.throws(() => new RedisRateLimiterBackend({ maxTransactionClients: 1.5 }), ConfigurationError);
    assert.throws(() => new RedisRateLimiterBackend({ url: "http://127.0.0.1" }), ConfigurationError);
  } finally {
    client.disconnect();
  }
});

test("redis backend rejects unsupported redisOptions", () => {
  assert.throws(
    () => new RedisRateLimiterBackend({ redisOptions: { sentinels: [{ host: "127.0.0.1", port: 26379 }] } as never }),
    (error: unknown) =>
      error instanceof ConfigurationError &&
      /Unsupported RedisRateLimiterBackend option redisOptions\.sentinels/.test(error.message) &&
      /pass it as `client`/.test(error.message),
  );
  assert.throws(() => new RedisRateLimiterBackend({ redisOptions: { connectTimeout: 0 } }), /redisOptions\.connectTimeout=0/);
  assert.throws(
    () => new RedisRateLimiterBackend({ client: { options: {} } as never }),
    (error: unknown) => error instanceof ConfigurationError && /expected an ioredis client/.test(error.message),
  );
});
