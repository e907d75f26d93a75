/** The built-in RESP2 client against the real Redis server at 127.0.0.1:6379. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { RedisBroker } from "../../../../src/brokers/redis/index.js";
import { RedisConnectionError, ReplyError } from "../../../../src/brokers/redis/resp/errors.js";
import { RespClient } from "../../../../src/brokers/redis/resp/resp-client.js";
import { ConfigurationError } from "../../../../src/errors.js";
import { uniqueNamespace } from "../helpers.js";
import { testClients } from "./test-clients.js";

const namespace = uniqueNamespace("resp");
const { clients, newClient } = testClients(namespace);

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("client runs the broker's commands", async () => {
  const client = newClient();
  assert.equal(client.status, "wait", "lazy clients wait for connect()");
  await client.connect();
  assert.equal(client.status, "ready");

  assert.equal(await client.ping(), "PONG");
  const zset = `${namespace}:z`;
  assert.equal(await client.zadd(zset, "1", "a"), 1);
  await client.zadd(zset, "2", "b");
  assert.equal(await client.zcard(zset), 2);
  assert.deepEqual(await client.zrangebyscore(zset, 2, "+inf", "LIMIT", 0, 1), ["b"]);

  const hash = `${namespace}:h`;
  const binary = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xc3]);
  await client.callBuffer("HSET", [hash, "f", binary]);
  assert.equal(await client.hlen(hash), 1);
  assert.deepEqual(await client.hgetBuffer(hash, "f"), binary, "binary values survive both ways");
  assert.equal(await client.hgetBuffer(hash, "missing"), null);

  await client.call("SADD", [`${namespace}:s`, "x", "y"]);
  assert.deepEqual((await client.smembers(`${namespace}:s`)).sort(), ["x", "y"]);
  assert.equal(await client.publish(`${namespace}:nobody`, "hi"), 0);
});

test("client runs the backends' commands", async () => {
  const client = newClient();
  const counter = `${namespace}:counter`;
  assert.equal(await client.set(counter, "1", "PX", 60_000, "NX"), "OK");
  assert.equal(await client.set(counter, "2", "PX", 60_000, "NX"), null, "NX keeps the first value");
  assert.equal(await client.get(counter), "1");
  assert.equal(await client.get(`${namespace}:missing`), null);
  assert.deepEqual(await client.mget([counter, `${namespace}:missing`]), ["1", null]);
  assert.equal(await client.watch(counter, `${namespace}:missing`), "OK");
  assert.equal(await client.unwatch(), "OK");

  const list = `${namespace}:rotating`;
  await client.call("RPUSH", [list, "a", "b"]);
  assert.equal(await client.lindex(list, 0), "a");
  assert.equal(await client.rpoplpush(list, list), "b", "the tail moves to the head");
  assert.equal(await client.lindex(list, 0), "b");
  assert.equal(await client.brpoplpush(list, list, 1), "a");
  assert.equal(await client.rpoplpush(`${namespace}:empty`, `${namespace}:empty`), null);
  assert.equal(await client.brpoplpush(`${namespace}:empty`, `${namespace}:empty`, 1), null, "the wait times out after 1 s");
});

test("client returns script replies as Buffers", async () => {
  const client = newClient();
  const reply = await client.callBuffer("EVAL", ["return {ARGV[1], 7, {ARGV[2]}, false}", 0, "one", "two"]);
  assert.deepEqual(reply, [Buffer.from("one"), 7, [Buffer.from("two")], null]);
});

test("client rejects error replies with the server text", async () => {
  const client = newClient();
  await assert.rejects(client.callBuffer("EVALSHA", ["0".repeat(40), 0]), (error: unknown) => {
    assert.ok(error instanceof ReplyError);
    assert.equal(error.name, "ReplyError");
    assert.match(error.message, /^NOSCRIPT/);
    return true;
  });
  await assert.rejects(client.call("NOSUCHCOMMAND"), /^ReplyError: ERR unknown command/);
  assert.equal(await client.ping(), "PONG", "the connection stays usable");
});

test("client moves 20 MiB values", async () => {
  const client = newClient();
  const value = Buffer.alloc(20 * 1024 * 1024, 0x7a);
  value.write("start", 0);
  await client.callBuffer("SET", [`${namespace}:big`, value]);
  const read = await client.callBuffer("GET", [`${namespace}:big`]);
  assert.ok(Buffer.isBuffer(read));
  assert.ok(read.equals(value));
  await client.call("DEL", [`${namespace}:big`]);
});

test("client keeps replies in order under load", async () => {
  const client = newClient();
  const replies = await Promise.all(Array.from({ length: 2000 }, (_, index) => client.call("ECHO", [`m${index}`])));
  assert.deepEqual(
    replies,
    Array.from({ length: 2000 }, (_, index) => `m${index}`),
  );
});

test("client selects db and sets its name", async () => {
  const name = `${namespace}-named`;
  const client = newClient({ db: 3, connectionName: name });
  const info = (await client.call("CLIENT", ["INFO"])) as string;
  assert.match(info, / db=3 /);
  assert.match(info, new RegExp(` name=${name} `));
});

test("subscriber resubscribes after CLIENT KILL", async () => {
  const name = `${namespace}-subscriber`;
  const publisher = newClient();
  const subscriber = newClient({ connectionName: name, retryStrategy: () => 20 });
  const received: [string, string][] = [];
  subscriber.on("message", (channel: string, message: string) => {
    received.push([channel, message]);
  });
  const errors: Error[] = [];
  subscriber.on("error", (error: Error) => errors.push(error));

  const channel = `${namespace}:wake`;
  assert.equal(await subscriber.subscribe(channel), 1);
  await publisher.publish(channel, "before");
  await waitFor("the first message", () => received.length === 1);
  assert.deepEqual(received[0], [channel, "before"]);

  const list = (await publisher.call("CLIENT", ["LIST"])) as string;
  const line = list.split("\n").find((entry) => entry.includes(` name=${name} `));
  const id = /(?:^|\s)id=(\d+)/.exec(line ?? "")?.[1];
  assert.ok(id !== undefined, "the subscriber shows in CLIENT LIST");
  assert.equal(await publisher.call("CLIENT", ["KILL", "ID", id]), 1);

  // Messages published before the resubscription are lost, so this publishes until one arrives.
  await waitFor("a message after the reconnection", async () => {
    await publisher.publish(channel, "after");
    return received.some(([, message]) => message === "after");
  });
  assert.ok(errors.length >= 1, "the lost connection was reported");
  assert.equal(subscriber.status, "ready");
});

test("AUTH failure names the user, not the password", async () => {
  const password = "resp-test-secret-8d2f";
  const client = newClient({ username: `${namespace}-nobody`, password, retryStrategy: () => null });
  const errors: Error[] = [];
  client.on("error", (error: Error) => errors.push(error));

  await assert.rejects(client.connect(), (error: unknown) => {
    assert.ok(error instanceof RedisConnectionError);
    assert.match(error.message, /rejected AUTH for user '.*-nobody'/);
    assert.match(error.message, /WRONGPASS/);
    assert.ok(!error.message.includes(password), "the message hides the password");
    return true;
  });
  assert.ok(errors.length >= 1, "the failure was also emitted as 'error'");
  assert.ok(errors.every((error) => !error.message.includes(password)));
});

test("unknown options raise ConfigurationError", () => {
  assert.throws(
    () => new RespClient({ sentinels: [{ host: "127.0.0.1", port: 26379 }] } as never),
    (error: unknown) => error instanceof ConfigurationError && /sentinels/.test(error.message) && /`client`/.test(error.message),
  );
  assert.throws(
    () => new RedisBroker({ redisOptions: { enableAutoPipelining: true } as never }),
    (error: unknown) => error instanceof ConfigurationError && /redisOptions\.enableAutoPipelining/.test(error.message) && /ioredis/.test(error.message),
  );
  assert.throws(
    () => new RespClient({ autoResendUnfulfilledCommands: true }),
    (error: unknown) => error instanceof ConfigurationError && /autoResendUnfulfilledCommands=true/.test(error.message),
  );
  assert.doesNotThrow(() => new RespClient({ autoResendUnfulfilledCommands: false, lazyConnect: true }));
  assert.throws(() => new RespClient({ port: 0 }), /port=0/);
  assert.throws(() => new RespClient({ maxRetriesPerRequest: -1 }), /maxRetriesPerRequest=-1/);
});

test("queued commands fail after maxRetriesPerRequest attempts", async () => {
  // Port 1 refuses connections on loopback, so every attempt fails.
  const client = newClient({ port: 1, retryStrategy: () => 10, maxRetriesPerRequest: 2 });
  client.on("error", () => undefined);

  await assert.rejects(client.ping(), (error: unknown) => {
    assert.ok(error instanceof RedisConnectionError);
    assert.match(error.message, /Failed to run PING/);
    assert.match(error.message, /2 reconnection attempt\(s\) failed/);
    assert.match(error.message, /maxRetriesPerRequest=2/);
    assert.match(error.message, /ECONNREFUSED/);
    return true;
  });
});

test("retryStrategy null ends the client", async () => {
  const client = newClient({ port: 1, retryStrategy: () => null });
  client.on("error", () => undefined);
  let ended = false;
  client.on("end", () => {
    ended = true;
  });

  await assert.rejects(client.ping(), /retryStrategy stopped reconnecting/);
  assert.equal(client.status, "end");
  assert.ok(ended);
});

test("disconnect rejects queued commands once", async () => {
  const client = newClient({ port: 1, retryStrategy: () => 1000 });
  client.on("error", () => undefined);
  let settled = 0;
  const ping = client.ping().finally(() => {
    settled += 1;
  });
  client.disconnect();

  await assert.rejects(ping, /disconnect\(\) or quit\(\) was called/);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, 1);
  await assert.rejects(client.ping(), /is closed/, "a closed client rejects new commands");
});

test("quit closes the connection", async () => {
  const client = newClient();
  await client.connect();
  assert.equal(await client.quit(), "OK");
  await waitFor("the end status", () => client.status === "end");
  assert.equal(client.stream, undefined);
});

test("duplicate copies the options", async () => {
  const client = newClient({ db: 2 });
  const copy = client.duplicate();
  clients.push(copy);
  assert.equal(copy.status, "wait");
  assert.match((await copy.call("CLIENT", ["INFO"])) as string, / db=2 /);
});

test("duplicate applies overrides", async () => {
  const client = newClient({ db: 2 });
  const copy = client.duplicate({ enableOfflineQueue: false });
  clients.push(copy);
  assert.equal(copy.options.db, 2);
  assert.equal(client.options.enableOfflineQueue, undefined, "the original keeps its options");

  await assert.rejects(copy.ping(), /enableOfflineQueue is false/);
  await copy.connect();
  assert.match((await copy.call("CLIENT", ["INFO"])) as string, / db=2 /);
});
