/**
 * The exposition server over real HTTP on 127.0.0.1 with a free port, and
 * the listen address settings (options, environment, defaults).
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { ConfigurationError } from "../../src/errors.js";
import {
  DEFAULT_HOST,
  DEFAULT_PORT,
  METRIC_NAMES,
  Prometheus,
  resolveListenAddress,
  startExpositionServer,
  type MetricsSnapshot,
} from "../../src/metrics/index.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";

test("startServer serves metrics with labels", async () => {
  const logs = captureLogs();
  const prometheus = new Prometheus({ host: "127.0.0.1", port: 0 });
  const fixture = createStubWorker({ middleware: [prometheus] });
  const ping = actor(() => undefined, { broker: fixture.broker, actorName: "ping", queueName: "pings" });
  const server = await prometheus.startServer();

  try {
    await fixture.worker.start();
    await ping.send();
    await fixture.broker.join("pings", { timeout: 5000 });
    await fixture.worker.join();

    const response = await fetch(server.url);
    const text = await response.text();

    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
    assert.notEqual(server.port, 0);
    assert.match(text, /^dramatiq_messages_total\{queue_name="pings",actor_name="ping"\} 1$/m);
    assert.match(text, /^dramatiq_message_duration_milliseconds_count\{queue_name="pings",actor_name="ping"\} 1$/m);
    for (const name of Object.values(METRIC_NAMES)) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), `the scrape declares ${name}`);
    }
  } finally {
    await server.close();
    await fixture.stop();
    logs.restore();
  }
});

test("exposition server rejects other paths and methods", async () => {
  const logs = captureLogs();
  const prometheus = new Prometheus({ host: "127.0.0.1", port: 0 });
  const server = await prometheus.startServer();
  const base = `http://127.0.0.1:${server.port}`;

  try {
    const root = await fetch(`${base}/`);
    assert.equal(root.status, 404);
    assert.match(await root.text(), /\/metrics/);

    const nested = await fetch(`${base}/metrics/extra`);
    assert.equal(nested.status, 404);
    await nested.body?.cancel();

    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();

    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    assert.equal(head.status, 200);

    const withQuery = await fetch(`${base}/metrics?name[]=dramatiq_messages_total`);
    assert.equal(withQuery.status, 200);
    await withQuery.body?.cancel();
  } finally {
    await server.close();
    logs.restore();
  }
});

test("startServer address overrides constructor", async () => {
  const logs = captureLogs();
  const prometheus = new Prometheus({ host: "::1", port: 1 });
  const server = await prometheus.startServer({ host: "127.0.0.1", port: 0 });

  try {
    assert.equal(server.host, "127.0.0.1");
    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    await server.close();
    await server.close();
    logs.restore();
  }
});

test("exposition server reports busy port", async () => {
  const logs = captureLogs();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const address = blocker.address();
  assert.ok(address !== null);
  assert.ok(typeof address === "object");

  try {
    const prometheus = new Prometheus({ host: "127.0.0.1", port: address.port });
    await assert.rejects(prometheus.startServer(), (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${address.port} \\(EADDRINUSE\\)`));
      assert.match(error.message, /dramatiq_prom_port/);
      return true;
    });
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    logs.restore();
  }
});

/** Returns a snapshot of one process, as its middleware would send it. */
function processSnapshot(messages: number, inProgress: number): MetricsSnapshot {
  const labels = { queue_name: "default", actor_name: "work" };
  return [
    { name: METRIC_NAMES.messages, help: "Messages processed.", type: "counter", aggregator: "sum", values: [{ value: messages, labels }] },
    { name: METRIC_NAMES.inProgress, help: "Messages in progress.", type: "gauge", aggregator: "sum", values: [{ value: inProgress, labels }] },
  ];
}

test("startExpositionServer serves gathered sum", async () => {
  const logs = captureLogs();
  let gathered = 0;
  const server = await startExpositionServer({
    host: "127.0.0.1",
    port: 0,
    gather: async () => {
      gathered += 1;
      return [processSnapshot(3, 1), processSnapshot(4, 0)];
    },
  });

  try {
    const response = await fetch(server.url);
    const text = await response.text();

    assert.equal(response.status, 200);
    assert.equal(gathered, 1);
    assert.match(text, /^dramatiq_messages_total\{queue_name="default",actor_name="work"\} 7$/m);
    assert.match(text, /^dramatiq_messages_inprogress\{queue_name="default",actor_name="work"\} 1$/m);
  } finally {
    await server.close();
    logs.restore();
  }
});

test("startExpositionServer returns 500 when gather fails", async () => {
  const logs = captureLogs();
  const server = await startExpositionServer({
    host: "127.0.0.1",
    port: 0,
    gather: () => Promise.reject(new Error("no worker responded")),
  });

  try {
    const response = await fetch(server.url);
    assert.equal(response.status, 500);
    await response.body?.cancel();
    assert.equal(logs.find("error", "Failed to collect the metrics").length, 1);
  } finally {
    await server.close();
    logs.restore();
  }
});

test("listen address defaults to Python's", () => {
  assert.deepEqual(resolveListenAddress({}, {}), { host: DEFAULT_HOST, port: DEFAULT_PORT });
  assert.equal(DEFAULT_HOST, "0.0.0.0");
  assert.equal(DEFAULT_PORT, 9191);
});

test("listen address reads environment", () => {
  const env = { dramatiq_prom_host: "127.0.0.1", dramatiq_prom_port: "9300" };

  assert.deepEqual(resolveListenAddress({}, env), { host: "127.0.0.1", port: 9300 });
  assert.deepEqual(resolveListenAddress({ host: "::1", port: 0 }, env), { host: "::1", port: 0 });
  assert.deepEqual(resolveListenAddress({}, { dramatiq_prom_host: " ", dramatiq_prom_port: "" }), { host: DEFAULT_HOST, port: DEFAULT_PORT });
});

test("listen address rejects invalid port", () => {
  for (const text of ["abc", "9191x", "-1", "65536", "0x23", "1.5"]) {
    assert.throws(
      () => resolveListenAddress({}, { dramatiq_prom_port: text }),
      (error: unknown) => error instanceof ConfigurationError && error.message.includes(`dramatiq_prom_port="${text}"`),
      `port ${text}`,
    );
  }
  assert.throws(() => resolveListenAddress({ port: 70000 }, {}), /option port=70000/);
});

test("Prometheus reads environment at construction", () => {
  const saved = { host: process.env["dramatiq_prom_host"], port: process.env["dramatiq_prom_port"] };
  process.env["dramatiq_prom_host"] = "127.0.0.2";
  process.env["dramatiq_prom_port"] = "9400";

  try {
    const prometheus = new Prometheus();
    assert.equal(prometheus.host, "127.0.0.2");
    assert.equal(prometheus.port, 9400);

    process.env["dramatiq_prom_port"] = "not-a-port";
    assert.throws(() => new Prometheus(), ConfigurationError);
  } finally {
    restoreEnv("dramatiq_prom_host", saved.host);
    restoreEnv("dramatiq_prom_port", saved.port);
  }
});

test("Prometheus rejects invalid queueDepthTimeout", () => {
  assert.throws(() => new Prometheus({ queueDepthTimeout: 0 }), /queueDepthTimeout 0/);
  assert.throws(() => new Prometheus({ queueDepthTimeout: Number.NaN }), ConfigurationError);
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) {
    Reflect.deleteProperty(process.env, name);
  } else {
    process.env[name] = value;
  }
}
