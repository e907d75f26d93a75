/**
 * The built-in client through a loopback proxy that the test cuts: commands
 * in flight on the dead connection are rejected, never matched to replies
 * of the next connection, and later commands run after the reconnection.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { RedisConnectionError } from "../../../../src/brokers/redis/resp/errors.js";
import { RespClient } from "../../../../src/brokers/redis/resp/resp-client.js";
import { TcpProxy } from "../../../helpers/tcp-proxy.js";
import { uniqueNamespace } from "../helpers.js";

let proxy: TcpProxy;
const clients: RespClient[] = [];
const namespace = uniqueNamespace("respcut");

before(async () => {
  proxy = await TcpProxy.start({ host: "127.0.0.1", port: 6379 });
});

after(async () => {
  for (const client of clients) {
    client.disconnect();
  }
  await proxy.close();
});

function proxiedClient(options: ConstructorParameters<typeof RespClient>[0] = {}): RespClient {
  const client = new RespClient({ host: "127.0.0.1", port: proxy.port, lazyConnect: true, retryStrategy: () => 50, ...options });
  client.on("error", () => undefined);
  clients.push(client);
  return client;
}

test("cut rejects in-flight commands, later ones succeed", async () => {
  const client = proxiedClient();
  await client.connect();

  // BLPOP on an empty list keeps its reply pending until the cut.
  let settlements = 0;
  const blocked = client.call("BLPOP", [`${namespace}:empty`, 5]).finally(() => {
    settlements += 1;
  });
  const echoed = client.call("ECHO", ["queued behind BLPOP"]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  proxy.cut();

  for (const pending of [blocked, echoed]) {
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(error instanceof RedisConnectionError);
      assert.match(error.message, /the connection closed before its reply arrived/);
      assert.match(error.message, /may or may not have run/);
      return true;
    });
  }

  // The replies of the new connection belong to the new commands.
  assert.equal(await client.call("ECHO", ["after the cut"]), "after the cut");
  assert.equal(await client.ping(), "PONG");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(settlements, 1, "the rejected command settled once");
});

test("commands wait offline until the server is back", async () => {
  const client = proxiedClient({ maxRetriesPerRequest: 100 });
  await client.connect();

  proxy.pause();
  proxy.cut();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const replies = [client.call("ECHO", ["one"]), client.call("ECHO", ["two"])];
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.notEqual(client.status, "ready", "the client is still reconnecting");
  proxy.resume();

  assert.deepEqual(await Promise.all(replies), ["one", "two"]);
});

test("offline commands fail after maxRetriesPerRequest", async () => {
  const client = proxiedClient({ maxRetriesPerRequest: 3 });
  await client.connect();

  proxy.pause();
  proxy.cut();
  try {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    await assert.rejects(client.ping(), /3 reconnection attempt\(s\) failed .*maxRetriesPerRequest=3/);
    assert.ok(Date.now() - started < 2000, "the command failed after a few attempts, not at a timeout");
  } finally {
    proxy.resume();
  }
  assert.equal(await client.ping(), "PONG", "the client recovers once the server is reachable");
});
