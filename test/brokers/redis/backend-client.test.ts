/** Client options and connection handling shared by the Redis results and rate-limiter backends, without a server. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { checkBackendClient, closeClients, type BackendRedisClient } from "../../../src/brokers/redis/backend-client.js";
import { buildClientOptions, reconnectDelay } from "../../../src/brokers/redis/client.js";
import { ConfigurationError } from "../../../src/errors.js";
import { getLogger } from "../../../src/logger.js";
import { captureLogs } from "../../helpers/logs.js";

const source = { owner: "TestBackend", displayUrl: "redis://127.0.0.1:6379/0", logger: getLogger("melodramatiq.test.backend-client") };

test("client options read url then redisOptions", () => {
  const options = buildClientOptions("redis://user:pw@10.0.0.1:6380/3", { connectTimeout: 500, db: 4, lazyConnect: false }, source);

  assert.equal(options.host, "10.0.0.1");
  assert.equal(options.port, 6380);
  assert.equal(options.username, "user");
  assert.equal(options.password, "pw");
  assert.equal(options.db, 4, "redisOptions win over the URL");
  assert.equal(options.connectTimeout, 500);
  assert.equal(options.maxRetriesPerRequest, 3);
  assert.equal(options.retryStrategy, reconnectDelay);
  assert.equal(options.lazyConnect, true, "a backend never connects in its constructor");
});

test("client options merge TLS settings", () => {
  const options = buildClientOptions("rediss://cache.example:6380?ssl_cert_reqs=none", { tls: { servername: "cache.example" } }, source);
  assert.deepEqual(options.tls, { rejectUnauthorized: false, servername: "cache.example" });
});

test("client options reject unsupported redisOptions", () => {
  assert.throws(
    () => buildClientOptions("redis://127.0.0.1", { keyPrefix: "app:" } as never, source),
    (error: unknown) => error instanceof ConfigurationError && /^Unsupported TestBackend option redisOptions\.keyPrefix/.test(error.message),
  );
});

test("client options warn about ignored URL parameters", () => {
  const logs = captureLogs();
  try {
    buildClientOptions("redis://127.0.0.1/0?health_check_interval=10", undefined, source);
    assert.equal(logs.find("warn", "Ignoring Redis URL parameters health_check_interval").length, 1);
  } finally {
    logs.restore();
  }
});

test("client check names the option", () => {
  for (const value of [null, "redis://127.0.0.1", { options: {}, duplicate() {}, on() {} }]) {
    assert.throws(
      () => {
        checkBackendClient(value, "TestBackend");
      },
      (error: unknown) => error instanceof ConfigurationError && /^Invalid TestBackend option `client`: expected an ioredis client/.test(error.message),
    );
  }
});

test("closeClients quits idle before cutting busy", async () => {
  const events: string[] = [];
  const fakeClient = (name: string): BackendRedisClient =>
    ({
      status: "ready",
      async quit() {
        await new Promise((resolve) => setTimeout(resolve, 10));
        events.push(`quit ${name}`);
      },
      disconnect() {
        events.push(`cut ${name}`);
      },
    }) as unknown as BackendRedisClient;

  await closeClients([fakeClient("idle")], [fakeClient("busy")], (client) => {
    events.push(`onCut ${client.status}`);
  });
  assert.deepEqual(events, ["quit idle", "onCut ready", "cut busy"]);
});
