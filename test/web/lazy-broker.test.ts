/**
 * The lazy broker as a broker: `instanceof`, forwarding to the live broker,
 * declarations before and after `initApp()`, the app context of tasks, and
 * custom broker classes.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { actor, Broker as EngineBroker, setBroker } from "../../src/index.js";
import { RabbitmqBroker as EngineRabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { StubBroker as EngineStubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError, ConnectionFailedError } from "../../src/errors.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { Retries } from "../../src/middleware/retries.js";
import { Worker } from "../../src/worker/worker.js";
import {
  AppContext,
  Broker,
  BrokerNotInitialisedError,
  createBrokerClass,
  currentApp,
  currentAppOrUndefined,
  NoAppContextError,
  RabbitmqBroker,
  StubBroker,
  type LazyActorOptions,
} from "../../src/web/index.js";
import { captureLogs } from "../helpers/logs.js";

class MarkerMiddleware extends Middleware {}

function uniquePrefix(): string {
  return `LAZY_${randomBytes(4).toString("hex").toUpperCase()}`;
}

function uniqueQueue(): string {
  return `web_lazy_${randomBytes(4).toString("hex")}`;
}

/** Starts a worker on `broker`, runs `body`, and stops the worker whatever happens. */
async function withWorker(broker: EngineBroker, body: (worker: Worker) => Promise<void>): Promise<void> {
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000 });
  await worker.start();
  try {
    await body(worker);
  } finally {
    await worker.stop();
  }
}

test("lazy broker is an instance of its engine class", () => {
  const rabbitmq = new RabbitmqBroker({ configPrefix: uniquePrefix() });
  const stub = new StubBroker({ configPrefix: uniquePrefix() });
  const dynamic = new Broker({ configPrefix: uniquePrefix() });

  assert.ok(rabbitmq instanceof EngineRabbitmqBroker);
  assert.ok(rabbitmq instanceof EngineBroker);
  assert.ok(rabbitmq instanceof RabbitmqBroker);
  assert.ok(!(rabbitmq instanceof StubBroker));
  assert.ok(stub instanceof EngineStubBroker);
  assert.ok(dynamic instanceof EngineBroker);
  assert.ok(!(dynamic instanceof EngineRabbitmqBroker), "the class of a lazy Broker is unknown before initApp");
  assert.ok(!(new EngineStubBroker() instanceof StubBroker), "an engine broker is not a lazy one");
});

test("lazy Broker takes the configured class", () => {
  const prefix = uniquePrefix();
  const rabbitmq = new Broker({ configPrefix: prefix });
  const stub = new Broker({ configPrefix: `${prefix}_STUB` });

  rabbitmq.initApp({ config: {} });
  stub.initApp({ config: { [`${prefix}_STUB_CLASS`]: "StubBroker" } });

  assert.ok(rabbitmq instanceof EngineRabbitmqBroker);
  assert.ok(stub instanceof EngineStubBroker);
  assert.ok(stub instanceof Broker);
  assert.ok(!(stub instanceof EngineRabbitmqBroker));
});

test("engine member before initApp throws not-initialised", () => {
  const stub = new StubBroker({ configPrefix: uniquePrefix() });
  const rabbitmq = new RabbitmqBroker({ configPrefix: uniquePrefix() });

  assert.throws(() => stub.deadLetters, BrokerNotInitialisedError);
  assert.throws(() => {
    stub.publishBody("default", Buffer.from("{}"));
  }, BrokerNotInitialisedError);
  assert.throws(() => rabbitmq.redactedUrl, /Cannot use redactedUrl: the lazy RabbitmqBroker/);
});

test("engine member after class switch names live class", () => {
  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix });
  broker.initApp({ config: { [`${prefix}_CLASS`]: "StubBroker" } });

  assert.throws(
    () => broker.redactedUrl,
    (error: unknown) => {
      assert.ok(error instanceof ConfigurationError);
      assert.match(error.message, /redactedUrl is not available/);
      assert.match(error.message, /StubBroker/);
      assert.match(error.message, new RegExp(`${prefix}_CLASS`));
      return true;
    },
  );
});

test("lazy StubBroker members read the live stub", async () => {
  const prefix = uniquePrefix();
  const queueName = uniqueQueue();
  const broker = new StubBroker({ configPrefix: prefix, middleware: [new Retries({ maxRetries: 0 })] });
  const fail = broker.actor(
    function fail(): never {
      throw new Error("boom");
    },
    { queueName },
  );
  broker.initApp({ config: {} });
  const live = broker.liveBroker;
  assert.ok(live instanceof EngineStubBroker);

  const logs = captureLogs();
  try {
    await withWorker(broker, async () => {
      await fail.send();
      await assert.rejects(broker.join(queueName, { timeout: 5000 }), /boom/);
    });
  } finally {
    logs.restore();
  }

  assert.equal(broker.deadLetters, live.deadLetters);
  assert.equal(broker.deadLettersOf(queueName).length, 1);
  await broker.flushAll();
  assert.equal(live.deadLetters.length, 0);
});

test("actor method rejects broker and actorClass", () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });
  const other = new StubBroker({ configPrefix: uniquePrefix() });

  assert.throws(() => broker.actor(function withBroker(): void {}, { broker: other } as LazyActorOptions), /does not take a `broker` option/);
  assert.throws(() => broker.actor(function withClass(): void {}, { actorClass: Object } as LazyActorOptions), /`actorClass` option is not supported/);
  assert.equal(broker.actors.size, 0);
});

test("lazy broker works with actor and setBroker", () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });

  const explicit = actor(function explicitBroker(): void {}, { broker });
  setBroker(broker);
  const global = actor(function globalBroker(): void {});

  assert.equal(explicit.broker, broker);
  assert.equal(global.broker, broker);
  assert.deepEqual([...broker.actors.keys()], ["explicitBroker", "globalBroker"]);
});

test("declarations after initApp reach live broker", () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });
  broker.declareQueue("declared_before");
  broker.initApp({ config: {} });
  const live = broker.liveBroker;
  assert.ok(live !== undefined);
  const marker = new MarkerMiddleware();

  broker.addMiddleware(marker);
  broker.declareQueue("declared_after");
  const late = broker.actor(function late(): void {}, { queueName: "late_queue" });

  assert.ok(live.getDeclaredQueues().has("declared_before"));
  assert.ok(live.getDeclaredQueues().has("declared_after"));
  assert.ok(live.getDeclaredQueues().has("late_queue"));
  assert.equal(live.getActor("late"), late);
  assert.equal(live.middleware.filter((middleware) => middleware === marker).length, 1);
  assert.equal(broker.middleware.filter((middleware) => middleware === marker).length, 1);
  assert.deepEqual(broker.getDeclaredQueues(), live.getDeclaredQueues());
});

test("app context middleware comes first", () => {
  const marker = new MarkerMiddleware();
  const broker = new StubBroker({ configPrefix: uniquePrefix(), middleware: [marker] });
  broker.initApp({ config: {} });

  assert.ok(broker.middleware[0] instanceof AppContext);
  assert.equal(broker.middleware[1], marker);
  assert.deepEqual(broker.liveBroker?.middleware, broker.middleware);
});

test("close before initApp does nothing", async () => {
  const broker = new RabbitmqBroker({ configPrefix: uniquePrefix() });

  await broker.close();

  assert.equal(broker.liveBroker, undefined);
});

test("currentApp survives awaits inside a task", async () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });
  const queueName = uniqueQueue();
  const app = { config: {}, name: "web" };
  const seen: unknown[] = [];
  const task = broker.actor(
    async function readApp(): Promise<void> {
      seen.push(currentApp());
      await sleep(5);
      seen.push(currentApp());
      await new Promise<void>((resolve) => setImmediate(resolve));
      await Promise.all([sleep(1), Promise.resolve()]);
      seen.push(currentAppOrUndefined());
    },
    { queueName },
  );
  broker.initApp(app);

  await withWorker(broker, async (worker) => {
    await task.send();
    await broker.join(queueName, { timeout: 5000 });
    await worker.join();
  });

  assert.deepEqual(seen, [app, app, app]);
  assert.equal(seen[0], app);
});

test("currentApp outside a task throws", () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });
  const direct = broker.actor(function direct(): unknown {
    return currentApp();
  });
  broker.initApp({ config: {} });

  assert.throws(() => currentApp(), (error: unknown) => error instanceof NoAppContextError && error.code === "MELO_ERR_NO_APP_CONTEXT");
  assert.equal(currentAppOrUndefined(), undefined);
  assert.throws(() => direct(), NoAppContextError);
});

test("each lazy broker's tasks see its own app", async () => {
  const first = new StubBroker({ configPrefix: uniquePrefix() });
  const second = new StubBroker({ configPrefix: uniquePrefix() });
  const queueName = uniqueQueue();
  const firstApp = { config: {}, name: "first" };
  const secondApp = { config: {}, name: "second" };
  const seen: Record<string, unknown> = {};
  const readFirst = first.actor(async function readFirst(): Promise<void> {
    await sleep(1);
    seen["first"] = currentApp();
  }, { queueName });
  const readSecond = second.actor(async function readSecond(): Promise<void> {
    await sleep(1);
    seen["second"] = currentApp();
  }, { queueName });
  first.initApp(firstApp);
  second.initApp(secondApp);

  await withWorker(first, async (firstWorker) => {
    await withWorker(second, async (secondWorker) => {
      await readFirst.send();
      await readSecond.send();
      await first.join(queueName, { timeout: 5000 });
      await second.join(queueName, { timeout: 5000 });
      await firstWorker.join();
      await secondWorker.join();
    });
  });

  assert.equal(seen["first"], firstApp);
  assert.equal(seen["second"], secondApp);
});

test("worker on the live broker keeps the app context", async () => {
  const broker = new StubBroker({ configPrefix: uniquePrefix() });
  const queueName = uniqueQueue();
  const app = { config: {} };
  let seen: unknown;
  const task = broker.actor(async function readLive(): Promise<void> {
    await sleep(1);
    seen = currentApp();
  }, { queueName });
  broker.initApp(app);
  const live = broker.liveBroker;
  assert.ok(live !== undefined);

  await withWorker(live, async (worker) => {
    await task.send();
    await live.join(queueName, { timeout: 5000 });
    await worker.join();
  });

  assert.equal(seen, app);
});

test("initApp opens no connection to the configured URL", async () => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    accepted.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const prefix = uniquePrefix();
  const logs = captureLogs();

  try {
    const broker = new RabbitmqBroker({ configPrefix: prefix });
    broker.actor(function quiet(): void {});
    broker.initApp({ config: { [`${prefix}_URL`]: `amqp://127.0.0.1:${port}` } });
    await sleep(200);
    await broker.close();

    assert.equal(accepted.length, 0);
    assert.deepEqual(logs.records.filter((record) => record.level === "warn" || record.level === "error"), []);
  } finally {
    logs.restore();
    for (const socket of accepted) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  }
});

test("connect reaches the configured URL on demand", async () => {
  // A port that was free a moment ago: connecting to it is refused.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => { resolve(); }));

  const prefix = uniquePrefix();
  const broker = new RabbitmqBroker({ configPrefix: prefix, connectionAttempts: 1, minReconnectDelay: 1, maxReconnectDelay: 1 });
  broker.initApp({ config: { [`${prefix}_URL`]: `amqp://guest:secret@127.0.0.1:${port}` } });
  const logs = captureLogs();

  try {
    await assert.rejects(broker.connect(), (error: unknown) => {
      assert.ok(error instanceof ConnectionFailedError);
      assert.ok(error.message.includes(String(port)), "the error names the configured port");
      assert.ok(!error.message.includes("secret"), "the error hides the password");
      return true;
    });
  } finally {
    logs.restore();
    await broker.close();
  }
});

test("custom broker class is selectable by name", () => {
  class QuietBroker extends EngineStubBroker {
    readonly level: number;

    constructor(options: { level?: number; middleware?: Middleware[] } = {}) {
      super(options.middleware === undefined ? {} : { middleware: options.middleware });
      this.level = options.level ?? 0;
    }

    describe(): string {
      return `quiet at ${this.level}`;
    }
  }

  const LazyQuietBroker = createBrokerClass(QuietBroker, { optionTypes: { level: "integer" } });
  const prefix = uniquePrefix();
  const lazy = new LazyQuietBroker({ configPrefix: prefix, level: 1 });
  const viaConfig = new RabbitmqBroker({ configPrefix: `${prefix}_BY_NAME` });

  lazy.initApp({ config: { [`${prefix}_LEVEL`]: "3" } });
  viaConfig.initApp({ config: { [`${prefix}_BY_NAME_CLASS`]: "QuietBroker", [`${prefix}_BY_NAME_LEVEL`]: "4" } });

  assert.ok(lazy instanceof QuietBroker);
  assert.equal(lazy.describe(), "quiet at 3");
  assert.equal(lazy.level, 3);
  assert.ok(viaConfig instanceof QuietBroker);
  assert.equal((viaConfig as unknown as QuietBroker).describe(), "quiet at 4");
  assert.throws(() => createBrokerClass(class QuietBroker extends EngineStubBroker {}), /already registered as "QuietBroker"/);
  assert.throws(() => createBrokerClass(Object as unknown as typeof EngineStubBroker), /needs an engine broker class/);
});

test("subclass of a lazy class keeps its methods", () => {
  class AppBroker extends RabbitmqBroker {
    greeting(): string {
      return `hello from ${this.configPrefix}`;
    }
  }

  const prefix = uniquePrefix();
  const broker = new AppBroker({ configPrefix: prefix });
  broker.initApp({ config: { [`${prefix}_CLASS`]: "StubBroker" } });

  assert.ok(broker instanceof AppBroker);
  assert.ok(broker instanceof RabbitmqBroker);
  assert.ok(broker instanceof EngineStubBroker);
  assert.equal(broker.greeting(), `hello from ${prefix}`);
});
