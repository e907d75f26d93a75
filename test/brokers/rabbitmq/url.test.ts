import assert from "node:assert/strict";
import { test } from "node:test";

import { RabbitmqBroker } from "../../../src/brokers/rabbitmq/index.js";
import { DEFAULT_CONNECT_TIMEOUT, parseAmqpUrl, splitUrls } from "../../../src/brokers/rabbitmq/url.js";
import { ConfigurationError } from "../../../src/errors.js";
import { captureLogs } from "../../helpers/logs.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

test("parseAmqpUrl maps defaults", () => {
  const endpoint = parseAmqpUrl("amqp://127.0.0.1");

  assert.deepEqual(endpoint.connect, {
    protocol: "amqp",
    hostname: "127.0.0.1",
    port: 5672,
    vhost: "/",
    username: "guest",
    password: "guest",
  });
  assert.equal(endpoint.socket.timeout, DEFAULT_CONNECT_TIMEOUT);
  assert.equal(endpoint.socket.servername, undefined);
});

test("parseAmqpUrl decodes credentials and vhost", () => {
  const endpoint = parseAmqpUrl("amqp://user%40corp:p%3Ass@rabbit.internal:5673/%2Fjobs");

  assert.equal(endpoint.connect.username, "user@corp");
  assert.equal(endpoint.connect.password, "p:ss");
  assert.equal(endpoint.connect.vhost, "/jobs");
  assert.equal(endpoint.connect.port, 5673);
  assert.equal(endpoint.connect.hostname, "rabbit.internal");
  assert.equal(endpoint.redactedUrl.includes("p%3Ass"), false);
});

test("parseAmqpUrl reads vhost %2F as slash", () => {
  assert.equal(parseAmqpUrl("amqp://h/%2F").connect.vhost, "/");
  assert.equal(parseAmqpUrl("amqp://h/").connect.vhost, "/");
  assert.equal(parseAmqpUrl("amqp://h/app").connect.vhost, "app");
});

test("parseAmqpUrl maps amqps to TLS options", () => {
  const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
  const endpoint = parseAmqpUrl("amqps://app:secret@rabbit.example.com/prod", {
    socketOptions: { ca: [ca], cert: "CERT", key: "KEY", rejectUnauthorized: true },
  });

  assert.equal(endpoint.connect.protocol, "amqps");
  assert.equal(endpoint.connect.port, 5671);
  assert.equal(endpoint.connect.vhost, "prod");
  assert.equal(endpoint.socket.servername, "rabbit.example.com");
  assert.deepEqual(endpoint.socket.ca, [ca]);
  assert.equal(endpoint.socket.cert, "CERT");
  assert.equal(endpoint.socket.key, "KEY");
  assert.equal(endpoint.socket.rejectUnauthorized, true);
});

test("parseAmqpUrl keeps explicit servername", () => {
  const endpoint = parseAmqpUrl("amqps://10.0.0.5:6000", { socketOptions: { servername: "rabbit.example.com" } });

  assert.equal(endpoint.socket.servername, "rabbit.example.com");
  assert.equal(endpoint.connect.port, 6000);
});

test("parseAmqpUrl sets no servername for IP hosts", () => {
  assert.equal(parseAmqpUrl("amqps://10.0.0.5").socket.servername, undefined);
  assert.equal(parseAmqpUrl("amqps://[::1]:5671").socket.servername, undefined);
  assert.equal(parseAmqpUrl("amqps://[::1]:5671").connect.hostname, "::1");
});

test("parseAmqpUrl reads query options", () => {
  const endpoint = parseAmqpUrl("amqp://h/?heartbeat=5&channel_max=100&frame_max=8192&socket_timeout=3&locale=en_US&retry_delay=2");

  assert.equal(endpoint.connect.heartbeat, 5);
  assert.equal(endpoint.connect.channelMax, 100);
  assert.equal(endpoint.connect.frameMax, 8192);
  assert.equal(endpoint.connect.locale, "en_US");
  assert.equal(endpoint.socket.timeout, 3000);
  assert.deepEqual(endpoint.ignoredQueryOptions, ["retry_delay"]);
});

test("parseAmqpUrl lets heartbeat option win", () => {
  assert.equal(parseAmqpUrl("amqp://h/?heartbeat=5", { heartbeat: 0 }).connect.heartbeat, 0);
  assert.equal(parseAmqpUrl("amqp://h/").connect.heartbeat, undefined);
});

test("parseAmqpUrl rejects other schemes without the password", () => {
  assert.throws(
    () => parseAmqpUrl("http://user:hunter2@h/"),
    (error: unknown) => error instanceof ConfigurationError && error.message.includes("amqp://") && !error.message.includes("hunter2"),
  );
});

test("parseAmqpUrl rejects invalid query values", () => {
  assert.throws(() => parseAmqpUrl("amqp://h/?heartbeat=soon"), /heartbeat="soon"/);
});

test("splitUrls splits fail-over lists", () => {
  assert.deepEqual(splitUrls("amqp://a; amqp://b"), ["amqp://a", "amqp://b"]);
  assert.deepEqual(splitUrls(["amqp://a", "amqp://b"]), ["amqp://a", "amqp://b"]);
  assert.throws(() => splitUrls(" ; "), ConfigurationError);
});

test("RabbitmqBroker exposes URLs and redacted URL", () => {
  const broker = new RabbitmqBroker({ url: "amqp://app:hunter2@a:5672;amqp://app:hunter2@b:5672", middleware: [] });

  assert.deepEqual(broker.urls, ["amqp://app:hunter2@a:5672", "amqp://app:hunter2@b:5672"]);
  assert.equal(broker.url, "amqp://app:hunter2@a:5672;amqp://app:hunter2@b:5672");
  assert.equal(broker.redactedUrl, "amqp://app:***@a:5672;amqp://app:***@b:5672");
});

test("RabbitmqBroker defaults", () => {
  const broker = new RabbitmqBroker({ middleware: [] });

  assert.equal(broker.url, "amqp://127.0.0.1:5672");
  assert.equal(broker.confirmDelivery, false);
  assert.equal(broker.maxPriority, undefined);
  assert.equal(broker.deadMessageTtl, 604_800_000);
  assert.equal(broker.connectionAttempts, 5);
  assert.equal(broker.minReconnectDelay, 100);
  assert.equal(broker.maxReconnectDelay, 5000);
});

test("RabbitmqBroker reads dead message TTL from environment", () => {
  const previous = process.env["dramatiq_dead_message_ttl"];
  try {
    process.env["dramatiq_dead_message_ttl"] = "86400000";
    assert.equal(new RabbitmqBroker({ middleware: [] }).deadMessageTtl, 86_400_000);
    assert.equal(new RabbitmqBroker({ middleware: [], deadMessageTtl: 1000 }).deadMessageTtl, 1000);

    process.env["dramatiq_dead_message_ttl"] = "a week";
    assert.throws(() => new RabbitmqBroker({ middleware: [] }), /dramatiq_dead_message_ttl="a week"/);
  } finally {
    if (previous === undefined) {
      delete process.env["dramatiq_dead_message_ttl"];
    } else {
      process.env["dramatiq_dead_message_ttl"] = previous;
    }
  }
});

test("RabbitmqBroker rejects invalid options", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ maxPriority: 0 }, /maxPriority=0/],
    [{ maxPriority: 256 }, /maxPriority=256/],
    [{ maxPriority: 2.5 }, /maxPriority=2.5/],
    [{ deadMessageTtl: -1 }, /deadMessageTtl=-1/],
    [{ heartbeat: -5 }, /heartbeat=-5/],
    [{ connectionAttempts: 0 }, /connectionAttempts=0/],
    [{ minReconnectDelay: 0 }, /minReconnectDelay=0/],
    [{ minReconnectDelay: 500, maxReconnectDelay: 100 }, /maxReconnectDelay=100.*at least 500/],
    [{ url: "redis://localhost" }, /amqp:\/\//],
  ];

  for (const [options, pattern] of cases) {
    assert.throws(() => new RabbitmqBroker({ middleware: [], ...options }), pattern, JSON.stringify(options));
  }
});

test("RabbitmqBroker warns about ignored query options", () => {
  const logs = captureLogs();
  try {
    new RabbitmqBroker({ url: "amqp://u:hunter2@h/?connection_attempts=3&retry_delay=1", middleware: [] });

    const warnings = logs.find("warn", "connection_attempts, retry_delay");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.message.includes("hunter2"), false);
  } finally {
    logs.restore();
  }
});

test("RabbitmqBroker constructor never connects", async () => {
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: 5672 });
  try {
    const broker = new RabbitmqBroker({ url: `amqp://127.0.0.1:${proxy.port}`, middleware: [] });
    broker.declareQueue("mq_never_connects");
    await new Promise((resolve) => setTimeout(resolve, 50));

    assert.equal(proxy.acceptedCount, 0);
  } finally {
    await proxy.close();
  }
});
