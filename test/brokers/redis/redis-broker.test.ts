/** RedisBroker on its own: options, URLs, connections, enqueue layout, flush, join, heartbeats. */

import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, test } from "node:test";

import type { Redis } from "ioredis";

import { actor } from "../../../src/actor.js";
import type { BrokerRedisClient } from "../../../src/brokers/redis/client.js";
import { parseRedisUrl, RedisBroker, type RedisBrokerOptions } from "../../../src/brokers/redis/index.js";
import { BrokerError, ConfigurationError, ConnectionFailedError, DramatiqError, QueueJoinTimeoutError } from "../../../src/errors.js";
import { Message } from "../../../src/message/message.js";
import type { MessageProxy } from "../../../src/worker/message-proxy.js";
import { captureLogs, type LogCapture } from "../../helpers/logs.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";
import { adminClient, deleteNamespace, REDIS_URL, sleep, uniqueNamespace, waitFor } from "./helpers.js";

const PASSWORD = "s3cret-pw-4711";
let admin: Redis;
const namespaces: string[] = [];

before(async () => {
  admin = adminClient();
  await admin.connect();
});

after(async () => {
  for (const namespace of namespaces) {
    await deleteNamespace(admin, namespace);
  }
  await admin.quit();
});

function newBroker(label: string, options: RedisBrokerOptions = {}): RedisBroker {
  const namespace = uniqueNamespace(label);
  namespaces.push(namespace);
  return new RedisBroker({ url: REDIS_URL, namespace, middleware: [], ...options });
}

function message(queueName = "default", options: Record<string, unknown> = {}): Message {
  return new Message({ queueName, actorName: "add", args: [1, 2], options });
}

/** Everything a log record or error exposes, flattened to text, to search for secrets. */
function exposedText(logs: LogCapture, error?: unknown): string {
  const parts: string[] = [];
  const addError = (value: unknown, depth: number): void => {
    if (!(value instanceof Error) || depth > 5) {
      return;
    }
    parts.push(value.message, value.stack ?? "", JSON.stringify(value));
    addError(value.cause, depth + 1);
  };

  addError(error, 0);
  for (const record of logs.records) {
    parts.push(record.message, JSON.stringify(record.fields));
    addError(record.fields["err"], 0);
  }
  return parts.join("\n");
}

test("parseRedisUrl reads host, port, credentials and db", () => {
  assert.deepEqual(parseRedisUrl("redis://user:p%40ss@redis.example:6380/3").options, {
    host: "redis.example",
    port: 6380,
    username: "user",
    password: "p@ss",
    db: 3,
  });
  assert.deepEqual(parseRedisUrl("redis://:only-password@host").options, { host: "host", port: 6379, password: "only-password" });
  assert.deepEqual(parseRedisUrl("redis://[::1]:7000?db=2").options, { host: "::1", port: 7000, db: 2 });
  assert.deepEqual(parseRedisUrl("redis://").options, { host: "localhost", port: 6379 });
});

test("parseRedisUrl maps rediss to TLS options", () => {
  assert.deepEqual(parseRedisUrl("rediss://secure.example:6390/1").options, { host: "secure.example", port: 6390, db: 1, tls: {} });
  assert.deepEqual(parseRedisUrl("rediss://h?ssl_cert_reqs=none").options.tls, { rejectUnauthorized: false });
  assert.deepEqual(parseRedisUrl("rediss://h?ssl_cert_reqs=required").options.tls, {});
  assert.throws(() => parseRedisUrl("rediss://h?ssl_cert_reqs=sometimes"), ConfigurationError);
});

test("parseRedisUrl reads unix socket URLs", () => {
  assert.deepEqual(parseRedisUrl("unix:///run/redis/redis.sock?db=4").options, { path: "/run/redis/redis.sock", db: 4 });
  assert.deepEqual(parseRedisUrl("unix://me:pw@/tmp/r.sock").options, { path: "/tmp/r.sock", username: "me", password: "pw" });
  assert.throws(() => parseRedisUrl("unix://relative.sock"), ConfigurationError);
});

test("parseRedisUrl reports ignored parameters", () => {
  assert.deepEqual(parseRedisUrl("redis://h/0?socket_timeout=5&db=1").ignoredParameters, ["socket_timeout"]);
});

test("parseRedisUrl rejects bad URLs without showing the password", () => {
  for (const url of [`http://u:${PASSWORD}@h`, `redis://u:${PASSWORD}@h:99999`, `redis://u:${PASSWORD}@h/abc`, `redis://u:${PASSWORD}@h:x`]) {
    assert.throws(
      () => parseRedisUrl(url),
      (error: unknown) => {
        assert.ok(error instanceof ConfigurationError, `${url.replace(PASSWORD, "***")} gives a ConfigurationError`);
        assert.ok(!error.message.includes(PASSWORD), "the message hides the password");
        assert.ok(!String(error.stack).includes(PASSWORD), "the stack hides the password");
        return true;
      },
    );
  }
});

test("RedisBroker merges redisOptions over the URL", () => {
  const broker = new RedisBroker({ url: "rediss://h:6390/2", redisOptions: { tls: { ca: "CERT" }, connectTimeout: 1234, lazyConnect: false } });
  const options = broker.clientOptions!;
  assert.equal(options.host, "h");
  assert.equal(options.db, 2);
  assert.deepEqual(options.tls, { ca: "CERT" });
  assert.equal(options.connectTimeout, 1234);
  assert.equal(options.lazyConnect, true, "constructing never connects");
});

test("RedisBroker validates options", () => {
  assert.throws(() => new RedisBroker({ heartbeatTimeout: 0 }), /heartbeatTimeout=0/);
  assert.throws(() => new RedisBroker({ deadMessageTtl: -1 }), /deadMessageTtl=-1/);
  assert.throws(() => new RedisBroker({ maintenanceChance: 2_000_000 }), /maintenanceChance=2000000/);
  assert.throws(() => new RedisBroker({ namespace: "" }), /namespace/);
  assert.throws(() => new RedisBroker({ url: REDIS_URL, client: adminClient() }), /either `client` or `url`/);
  assert.throws(() => new RedisBroker({ client: { foo: 1 } as never }), (error: unknown) => error instanceof ConfigurationError && /ioredis client/.test(error.message));
  assert.throws(() => newBroker("bad-consume").consume("q.XQ", { prefetch: 1 }), ConfigurationError);
  assert.throws(() => newBroker("bad-prefetch").consume("q", { prefetch: 0 }), /prefetch 0/);
});

test("RedisBroker constructor opens no connection", async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const logs = captureLogs();

  try {
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}/0`, namespace: uniqueNamespace("lazy"), middleware: [] });
    actor(() => undefined, { broker, actorName: "noop" });
    await sleep(100);
    assert.equal(sockets.length, 0, "no connection after construction and actor declaration");
    assert.deepEqual(logs.records, []);
    await broker.close();
  } finally {
    logs.restore();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("connect fails with redacted ConnectionFailedError", async () => {
  const logs = captureLogs();
  const broker = new RedisBroker({ url: `redis://user:${PASSWORD}@127.0.0.1:1/0`, namespace: uniqueNamespace("refused") });

  try {
    const error = await broker.connect().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof ConnectionFailedError, "connect() rejects with ConnectionFailedError");
    assert.match(error.message, /redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/0/);
    assert.match(error.message, /ECONNREFUSED/);
    assert.ok(error.cause !== undefined, "the cause is kept");
    await sleep(300); // reconnection attempts would log here
    assert.ok(!exposedText(logs, error).includes(PASSWORD), "no password in the error or logs");
  } finally {
    await broker.close();
    logs.restore();
  }
});

test("connect with wrong credentials fails without showing the password", async () => {
  const logs = captureLogs();
  const broker = new RedisBroker({ url: `redis://melotest-nobody:${PASSWORD}@127.0.0.1:6379/0`, namespace: uniqueNamespace("wrongpass") });

  try {
    const error = await broker.connect().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof ConnectionFailedError);
    assert.match(error.message, /WRONGPASS/);
    assert.ok(!exposedText(logs, error).includes(PASSWORD), "no password in the error or logs");
  } finally {
    await broker.close();
    logs.restore();
  }
});

test("enqueue fails with connection error when server is down", async () => {
  const logs = captureLogs();
  const broker = new RedisBroker({ url: `redis://:${PASSWORD}@127.0.0.1:1/0`, namespace: uniqueNamespace("down"), middleware: [] });

  try {
    const error = await broker.enqueue(message()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof ConnectionFailedError, "enqueue rejects with ConnectionFailedError");
    assert.match(error.message, /ECONNREFUSED/);
    assert.ok(!exposedText(logs, error).includes(PASSWORD), "no password in the error or logs");
  } finally {
    await broker.close();
    logs.restore();
  }
});

test("enqueue stores body under a fresh redis_message_id", async () => {
  const broker = newBroker("enqueue");
  try {
    const first = await broker.enqueue(message());
    const second = await broker.enqueue(message());
    const delayed = await broker.enqueue(message("default", { max_retries: 3 }), { delay: 60_000 });
    const retried = await broker.enqueue(message("default", { redis_message_id: "old", retries: 1 }));

    const ids = [first, second, delayed, retried].map((sent) => sent.options["redis_message_id"] as string);
    assert.equal(new Set(ids).size, 4, "every enqueue gets a new id");
    assert.deepEqual(Object.keys(delayed.options), ["max_retries", "redis_message_id", "eta"], "redis_message_id goes before eta");
    assert.deepEqual(Object.keys(retried.options), ["redis_message_id", "retries"], "an existing id keeps its position");

    const ns = broker.namespace;
    assert.deepEqual(await admin.lrange(`${ns}:default`, 0, -1), [ids[0], ids[1], ids[3]]);
    assert.deepEqual(await admin.lrange(`${ns}:default.DQ`, 0, -1), [ids[2]]);
    assert.equal(await admin.hget(`${ns}:default.msgs`, ids[0]!), first.encode().toString());
    assert.equal(await admin.hget(`${ns}:default.DQ.msgs`, ids[2]!), delayed.encode().toString());
    assert.equal(delayed.queueName, "default.DQ");
    assert.deepEqual(await admin.zrange(`${ns}:__heartbeats__`, 0, -1), [broker.brokerId], "a producer records its heartbeat");
  } finally {
    await broker.close();
  }
});

test("enqueue maps Redis errors to BrokerError", async () => {
  const broker = newBroker("wrongtype");
  try {
    await admin.set(`${broker.namespace}:default`, "not a list");
    const error = await broker.enqueue(message()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof BrokerError, "a ReplyError becomes a BrokerError");
    assert.match((error as Error).message, /WRONGTYPE/);
  } finally {
    await broker.close();
  }
});

test("close is idempotent and broker reconnects after it", async () => {
  const broker = newBroker("close");
  await broker.connect();
  await Promise.all([broker.close(), broker.close()]);
  await broker.close();

  await broker.enqueue(message());
  assert.equal(await admin.llen(`${broker.namespace}:default`), 1);
  await broker.close();
});

test("close leaves a client passed in open", async () => {
  const client = adminClient();
  const namespace = uniqueNamespace("client");
  namespaces.push(namespace);
  const broker = new RedisBroker({ client, namespace, middleware: [] });

  try {
    await broker.connect();
    await broker.enqueue(message());
    await broker.close();
    assert.equal(client.status, "ready");
    assert.equal(await client.llen(`${namespace}:default`), 1);
  } finally {
    await client.quit();
  }
});

test("flush and flushAll delete queue keys", async () => {
  const broker = newBroker("flush");
  try {
    broker.declareQueue("other");
    await broker.enqueue(message());
    await broker.enqueue(message(), { delay: 10_000 });
    await broker.enqueue(message("other"));
    await admin.zadd(`${broker.namespace}:default.XQ`, "1", "dead");
    await admin.hset(`${broker.namespace}:default.XQ.msgs`, "dead", "{}");

    await broker.flush("default");
    const left = await admin.keys(`${broker.namespace}:*`);
    assert.deepEqual(left.sort(), [`${broker.namespace}:__heartbeats__`, `${broker.namespace}:other`, `${broker.namespace}:other.msgs`]);

    await broker.flushAll();
    assert.deepEqual(await admin.keys(`${broker.namespace}:*`), [`${broker.namespace}:__heartbeats__`]);
  } finally {
    await broker.close();
  }
});

test("join times out while messages wait", async () => {
  const broker = newBroker("join-timeout");
  try {
    await broker.enqueue(message());
    await broker.enqueue(message(), { delay: 60_000 });
    await assert.rejects(broker.join("default", { timeout: 300 }), (error: unknown) => {
      assert.ok(error instanceof QueueJoinTimeoutError);
      assert.match(error.message, /1 message\(s\) waiting or in flight, 1 delayed/);
      return true;
    });
  } finally {
    await broker.close();
  }
});

test("join waits for acks and fails fast on nack", async () => {
  const broker = newBroker("join");
  const consumer = broker.consume("default", { prefetch: 4 });
  const delivered: MessageProxy[] = [];

  try {
    await broker.enqueue(message());
    await broker.enqueue(message());
    await consumer.start((proxy) => delivered.push(proxy));
    await waitFor("two deliveries", () => delivered.length === 2);

    let joined = false;
    const join = broker.join("default", { timeout: 5000 }).then(() => {
      joined = true;
    });
    await sleep(250);
    assert.equal(joined, false, "join waits while messages are unacked");
    await consumer.ack(delivered[0]!);
    await consumer.ack(delivered[1]!);
    await join;

    await broker.enqueue(message());
    await waitFor("third delivery", () => delivered.length === 3);
    const failure = new Error("boom");
    delivered[2]!.fail(failure);
    await consumer.nack(delivered[2]!);
    await assert.rejects(broker.join("default", { timeout: 5000 }), (error: unknown) => error === failure);
    await broker.join("default", { timeout: 5000, failFast: false });

    await broker.flush("default");
    await broker.join("default", { timeout: 5000 });
  } finally {
    await consumer.close();
    await broker.close();
  }
});

test("a delivery of another consumer is not settled by this one", async () => {
  const broker = newBroker("owner");
  const consumerA = broker.consume("a", { prefetch: 1 });
  const consumerB = broker.consume("b", { prefetch: 1 });
  const delivered: MessageProxy[] = [];

  try {
    await broker.enqueue(message("a"));
    await consumerA.start((proxy) => delivered.push(proxy));
    await consumerB.start(() => {});
    await waitFor("a delivery on queue a", () => delivered.length === 1);
    const [proxy] = delivered;
    const ids = await broker.ackedIds("a");
    assert.equal(ids.length, 1);
    assert.deepEqual(proxy?.delivery, { redisMessageId: ids[0] });
    assert.doesNotThrow(() => JSON.stringify(proxy));

    await consumerB.ack(proxy);
    proxy.fail(new Error("boom"));
    await consumerB.nack(proxy);
    assert.deepEqual(await broker.ackedIds("a"), ids, "the wrong consumer leaves the delivery unacked");
    assert.equal(consumerA.outstandingCount, 1);
    // A nack recorded by the wrong consumer would make join fail fast with "boom".
    await assert.rejects(broker.join("a", { timeout: 100 }), QueueJoinTimeoutError);

    await consumerA.ack(proxy);
    assert.deepEqual(await broker.ackedIds("a"), []);
    assert.equal(consumerA.outstandingCount, 0);
    await broker.join("a", { timeout: 5000 });
  } finally {
    await consumerA.close();
    await consumerB.close();
    await broker.close();
  }
});

test("failed requeue returns once Redis answers", async () => {
  // The ids of a failed requeue stay in this broker's acks set, which no
  // other worker recovers while this process lives.
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 6379 });
  const broker = newBroker("requeue-cut", { url: proxy.urlFor(REDIS_URL), maintenanceChance: 0 });
  const consumer = broker.consume("default", { prefetch: 1 });
  const delivered: MessageProxy[] = [];
  const logs = captureLogs();

  try {
    await broker.enqueue(message());
    await consumer.start((proxyMessage) => delivered.push(proxyMessage));
    await waitFor("a delivery", () => delivered.length === 1);

    proxy.pause();
    proxy.cut();
    await assert.rejects(consumer.requeue([delivered[0]!]), BrokerError);
    proxy.resume();

    await waitFor("the message delivered again", () => delivered.length === 2, 15_000);
    assert.equal(delivered[1]?.messageId, delivered[0]?.messageId);
    assert.equal(logs.find("info", "whose requeue had failed").length, 1);
    await consumer.ack(delivered[1]!);
    assert.deepEqual(await broker.ackedIds("default"), []);
  } finally {
    logs.restore();
    await consumer.close();
    await broker.close();
    await proxy.close();
  }
});

test("join fails fast on dead letter of another process", async () => {
  const broker = newBroker("join-remote");
  const other = new RedisBroker({ url: REDIS_URL, namespace: broker.namespace, middleware: [] });
  const consumer = other.consume("default", { prefetch: 1 });
  const delivered: MessageProxy[] = [];

  try {
    const sent = await broker.enqueue(message());
    await consumer.start((proxy) => delivered.push(proxy));
    await waitFor("delivery", () => delivered.length === 1);

    const join = broker.join("default", { timeout: 5000 });
    await sleep(150);
    await consumer.nack(delivered[0]!);
    await assert.rejects(join, (error: unknown) => {
      assert.ok(error instanceof DramatiqError);
      assert.match(error.message, new RegExp(`Message '${sent.messageId}' \\(actor 'add'\\) of queue 'default' was dead-lettered by another process`));
      return true;
    });
  } finally {
    await consumer.close();
    await Promise.all([broker.close(), other.close()]);
  }
});

test("heartbeat timer runs while prefetch is full", async () => {
  const calls: string[] = [];
  class CountingBroker extends RedisBroker {
    protected override async runDispatch(client: BrokerRedisClient, argv: readonly (string | Buffer)[]): Promise<unknown> {
      calls.push(argv[0]!.toString());
      return super.runDispatch(client, argv);
    }
  }
  const namespace = uniqueNamespace("heartbeat");
  namespaces.push(namespace);
  const broker = new CountingBroker({ url: REDIS_URL, namespace, heartbeatTimeout: 400, middleware: [] });
  const consumer = broker.consume("default", { prefetch: 1 });
  const delivered: MessageProxy[] = [];

  try {
    await broker.enqueue(message());
    await consumer.start((proxy) => delivered.push(proxy));
    await waitFor("delivery", () => delivered.length === 1);

    // Prefetch is full, so the consumer stops fetching; only the timer can refresh the heartbeat.
    const fetchesBefore = calls.filter((command) => command === "fetch").length;
    const scoreBefore = Number(await admin.zscore(`${namespace}:__heartbeats__`, broker.brokerId));
    await waitFor(
      "heartbeat refresh",
      async () => Number(await admin.zscore(`${namespace}:__heartbeats__`, broker.brokerId)) > scoreBefore + 150,
      3000,
    );
    assert.equal(calls.filter((command) => command === "fetch").length, fetchesBefore, "no fetch while prefetch is full");
  } finally {
    await consumer.close();
    await broker.close();
  }
});

test("batch size follows dramatiq_lua_max_stack", async () => {
  const previous = process.env["dramatiq_lua_max_stack"];
  try {
    process.env["dramatiq_lua_max_stack"] = "100";
    const small = newBroker("max-stack");
    assert.equal(await small.batchSize(), 50);
    await small.close();

    process.env["dramatiq_lua_max_stack"] = "lots";
    const invalid = newBroker("max-stack-invalid");
    await assert.rejects(invalid.batchSize(), /Invalid dramatiq_lua_max_stack="lots"/);
    await invalid.close();

    delete process.env["dramatiq_lua_max_stack"];
    const probed = newBroker("max-stack-probe");
    assert.equal(await probed.batchSize(), 3998, "Redis 7 allows unpack() of 7997 values");
    await probed.close();
  } finally {
    if (previous === undefined) {
      delete process.env["dramatiq_lua_max_stack"];
    } else {
      process.env["dramatiq_lua_max_stack"] = previous;
    }
  }
});
