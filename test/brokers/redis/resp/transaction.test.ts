/**
 * MULTI/EXEC transactions of the built-in client against the real Redis
 * server: the result shape of ioredis's `multi(commands).exec()`, aborts
 * after WATCH, refused transactions, connection failures, and that no other
 * command of the client runs between MULTI and EXEC.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { RedisConnectionError, ReplyError } from "../../../../src/brokers/redis/resp/errors.js";
import { RawMonitor } from "../../../helpers/redis-monitor.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { uniqueNamespace } from "../helpers.js";
import { testClients } from "./test-clients.js";

const namespace = uniqueNamespace("resptx");
const { newClient } = testClients(namespace);

test("multi returns one pair per command", async () => {
  const client = newClient();
  const key = `${namespace}:list`;
  await client.call("RPUSH", [key, "old"]);

  const replies = await client
    .multi([
      ["del", key],
      ["lpush", key, "new"],
      ["pexpire", key, 60_000],
    ])
    .exec();

  assert.deepEqual(replies, [
    [null, 1],
    [null, 1],
    [null, 1],
  ]);
  assert.deepEqual(await client.call("LRANGE", [key, 0, -1]), ["new"]);
  const pttl = (await client.call("PTTL", [key])) as number;
  assert.ok(pttl > 0, `PTTL ${pttl} means no expiry was set`);
  assert.ok(pttl <= 60_000, `PTTL ${pttl} exceeds the TTL`);
});

test("multi returns null after watched key changed", async () => {
  const client = newClient();
  const rival = newClient();
  const key = `${namespace}:watched`;
  await client.set(key, "1");

  await client.watch(key);
  await rival.set(key, "2");
  const replies = await client.multi([["set", key, "3"]]).exec();

  assert.equal(replies, null, "EXEC aborted");
  assert.equal(await client.get(key), "2", "the aborted SET did not run");
  assert.deepEqual(await client.multi([["set", key, "4"]]).exec(), [[null, "OK"]], "EXEC unwatched the key");
});

test("multi pairs a failed command with its error", async () => {
  const client = newClient();
  const text = `${namespace}:text`;
  const list = `${namespace}:pushed`;
  await client.set(text, "not a list");

  const replies = await client
    .multi([
      ["lpush", text, "x"],
      ["lpush", list, "x"],
    ])
    .exec();

  assert.ok(replies !== null);
  const [[failure, failedResult] = [], [success, pushed] = []] = replies;
  assert.ok(failure instanceof ReplyError, String(failure));
  assert.match(failure.message, /^WRONGTYPE/);
  assert.equal(failedResult, null);
  assert.equal(success, null);
  assert.equal(pushed, 1, "the other command still ran");
});

test("multi rejects a command that fails to queue", async () => {
  const client = newClient();
  const key = `${namespace}:refused`;

  await assert.rejects(
    client
      .multi([
        ["set", key, "1"],
        ["set", key],
      ])
      .exec(),
    (error: unknown) => {
      assert.ok(error instanceof ReplyError);
      assert.match(error.message, /^EXECABORT/);
      assert.match(error.message, /The first command that failed to queue replied: ERR wrong number of arguments/);
      return true;
    },
  );
  assert.equal(await client.get(key), null, "nothing of the refused transaction ran");
  assert.equal(await client.call("ECHO", ["in step"]), "in step", "replies still match their commands");
});

test("multi keeps other commands out", async () => {
  const client = newClient({ connectionName: `${namespace}-interleave` });
  const key = `${namespace}:counter`;
  const monitor = await RawMonitor.start();

  try {
    // Issued before the connection is up, so they start in the offline
    // queue; later rounds go out while earlier replies are still pending.
    const pending: Promise<unknown>[] = [];
    for (let round = 0; round < 50; round += 1) {
      pending.push(client.call("ECHO", [`${key}:before`]));
      pending.push(client.multi([["incr", key]]).exec());
      pending.push(client.call("ECHO", [`${key}:after`]));
      if (round === 25) {
        await client.connect();
      }
    }
    await Promise.all(pending);
    assert.equal(await client.get(key), "50");

    const marker = `${key}:marker`;
    await client.call("ECHO", [marker]);
    const deadline = Date.now() + 10_000;
    while (!monitor.commands.some(({ args }) => args.includes(marker))) {
      assert.ok(Date.now() < deadline, "MONITOR reports the marker within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const source = monitor.commands.find(({ args }) => args.includes(marker))?.source;
    const sequence = monitor.commands.filter((command) => command.source === source).map(({ args }) => (args[0] ?? "").toUpperCase());
    for (const [index, name] of sequence.entries()) {
      if (name === "MULTI") {
        assert.deepEqual(sequence.slice(index, index + 3), ["MULTI", "INCR", "EXEC"], `commands ${index} to ${index + 2}`);
      }
    }
    assert.equal(sequence.filter((name) => name === "MULTI").length, 50);
  } finally {
    monitor.close();
  }
});

test("multi rejects when the connection is cut", async () => {
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 6379 });
  const client = newClient({ port: proxy.port, retryStrategy: () => null });
  client.on("error", () => undefined);
  const key = `${namespace}:cut`;

  try {
    await client.connect();
    // Frozen, the proxy passes nothing on, so the transaction is in flight when the cut comes.
    proxy.freeze();
    const exec = client.multi([["set", key, "1"]]).exec();
    await new Promise((resolve) => setTimeout(resolve, 50));
    proxy.cut();

    await assert.rejects(exec, (error: unknown) => {
      assert.ok(error instanceof RedisConnectionError);
      assert.match(error.message, /Failed to run MULTI: the connection closed before its reply arrived/);
      return true;
    });
    assert.equal(await newClient().get(key), null, "the server never ran the transaction");
  } finally {
    await proxy.close();
  }
});

test("multi rejects while offline", async () => {
  const client = newClient({ enableOfflineQueue: false });

  await assert.rejects(client.multi([["incr", `${namespace}:offline`]]).exec(), (error: unknown) => {
    assert.ok(error instanceof RedisConnectionError);
    assert.match(error.message, /Failed to run MULTI: not connected to Redis at redis:\/\/127\.0\.0\.1:6379\/0, and enableOfflineQueue is false/);
    return true;
  });
});
