import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../src/actor.js";
import type { Actor } from "../src/actor.js";
import type { Broker } from "../src/broker.js";
import { StubBroker } from "../src/brokers/stub/index.js";
import { ConfigurationError, ActorNotFoundError } from "../src/errors.js";
import type { Message } from "../src/message/message.js";
import { Middleware } from "../src/middleware/middleware.js";
import { Retries } from "../src/middleware/retries.js";
import { captureLogs } from "./helpers/logs.js";

class Recorder extends Middleware {
  constructor(
    readonly label: string,
    readonly events: string[],
  ) {
    super();
  }

  override afterDeclareActor(_broker: Broker, declared: Actor): void {
    this.events.push(`${this.label}:actor:${declared.actorName}`);
  }

  override afterDeclareQueue(_broker: Broker, queueName: string): void {
    this.events.push(`${this.label}:queue:${queueName}`);
  }

  override beforeEnqueue(_broker: Broker, message: Message, delay: number | undefined): void {
    this.events.push(`${this.label}:before-enqueue:${message.actorName}:${String(delay)}`);
  }

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.events.push(`${this.label}:after-enqueue:${message.queueName}`);
  }
}

class Limits extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["customLimit"]);
}

test("hooks run in middleware order", async () => {
  const events: string[] = [];
  const broker = new StubBroker({ middleware: [new Recorder("a", events), new Recorder("b", events)] });
  const task = actor(() => undefined, { broker, actorName: "task", queueName: "jobs" });
  await task.sendWithOptions({ delay: 10 });

  assert.deepEqual(events, [
    "a:queue:jobs",
    "b:queue:jobs",
    "a:actor:task",
    "b:actor:task",
    "a:before-enqueue:task:10",
    "b:before-enqueue:task:10",
    "a:after-enqueue:jobs.DQ",
    "b:after-enqueue:jobs.DQ",
  ]);
});

test("addMiddleware positions and replays declarations", () => {
  const events: string[] = [];
  const broker = new StubBroker({ middleware: [new Retries()] });
  actor(() => undefined, { broker, actorName: "early" });
  const late = new Recorder("late", events);
  broker.addMiddleware(late, { before: Retries });

  assert.equal(broker.middleware[0], late);
  assert.deepEqual(events, ["late:queue:default", "late:actor:early"]);

  const tail = new Recorder("tail", []);
  broker.addMiddleware(tail, { after: Retries });
  assert.equal(broker.middleware.at(-1), tail);
});

test("addMiddleware rejects unknown anchor", () => {
  const broker = new StubBroker({ middleware: [] });
  assert.throws(() => {
    broker.addMiddleware(new Limits(), { before: Retries });
  }, /no middleware of class Retries/);
  assert.throws(() => {
    broker.addMiddleware(new Limits(), { before: Retries, after: Retries });
  }, ConfigurationError);
});

test("middleware options are validated at declaration", () => {
  const broker = new StubBroker();
  assert.throws(() => actor(() => undefined, { broker, actorName: "x", ...({ customLimit: 3 } as object) }), /customLimit/);

  broker.addMiddleware(new Limits());
  const limited = actor(() => undefined, { broker, actorName: "y", ...({ customLimit: 3 } as object) });
  assert.deepEqual(limited.options, { customLimit: 3 });
});

test("after hook errors are logged not thrown", async () => {
  class Broken extends Middleware {
    override afterEnqueue(): void {
      throw new Error("hook exploded");
    }
  }

  const logs = captureLogs();
  try {
    const broker = new StubBroker({ middleware: [new Broken()] });
    const task = actor(() => undefined, { broker, actorName: "task" });
    await task.send();
    assert.equal(broker.queue("default").bodies.length, 1);
    assert.equal(logs.find("error", "Unexpected failure in afterEnqueue of Broken").length, 1);
  } finally {
    logs.restore();
  }
});

test("before hook errors propagate", async () => {
  class Refuse extends Middleware {
    override beforeEnqueue(): void {
      throw new Error("refused");
    }
  }

  const broker = new StubBroker({ middleware: [new Refuse()] });
  const task = actor(() => undefined, { broker, actorName: "task" });
  await assert.rejects(task.send(), /refused/);
  assert.equal(broker.queue("default").bodies.length, 0);
});

test("hooks mix synchronous and async middleware in order", async () => {
  const events: string[] = [];
  class Sync extends Middleware {
    constructor(readonly label: string) {
      super();
    }
    override afterEnqueue(): void {
      events.push(this.label);
    }
  }
  class Async extends Middleware {
    constructor(readonly label: string) {
      super();
    }
    override async afterEnqueue(): Promise<void> {
      await Promise.resolve();
      events.push(this.label);
    }
  }
  class AsyncBroken extends Middleware {
    override async afterEnqueue(): Promise<void> {
      await Promise.resolve();
      throw new Error("late failure");
    }
  }

  const logs = captureLogs();
  try {
    const broker = new StubBroker({ middleware: [new Sync("a"), new Async("b"), new AsyncBroken(), new Sync("c")] });
    const task = actor(() => undefined, { broker, actorName: "task" });
    await task.send();

    assert.deepEqual(events, ["a", "b", "c"]);
    assert.equal(logs.find("error", "Unexpected failure in afterEnqueue of AsyncBroken").length, 1);
  } finally {
    logs.restore();
  }
});

test("middleware pushed onto the array directly gets its hooks called", async () => {
  const events: string[] = [];
  const broker = new StubBroker({ middleware: [new Recorder("a", events)] });
  const task = actor(() => undefined, { broker, actorName: "task" });
  await task.send();
  broker.middleware.push(new Recorder("late", events));
  await task.send();

  assert.deepEqual(
    events.filter((event) => event.includes("after-enqueue")),
    ["a:after-enqueue:default", "a:after-enqueue:default", "late:after-enqueue:default"],
  );
});

test("a synchronous before hook error rejects emitBefore", async () => {
  class Refuse extends Middleware {
    override beforeEnqueue(): void {
      throw new Error("refused at once");
    }
  }

  const broker = new StubBroker({ middleware: [new Refuse()] });
  const task = actor(() => undefined, { broker, actorName: "task" });
  // A synchronous throw must surface as a rejection, as it did when emitBefore was async.
  const pending = broker.emitBefore("beforeEnqueue", task.message(), undefined);
  await assert.rejects(pending, /refused at once/);
});

test("getActor throws for unknown name", () => {
  const broker = new StubBroker();
  assert.throws(() => broker.getActor("nope"), ActorNotFoundError);
});

test("enqueue rejects invalid delay", async () => {
  const broker = new StubBroker();
  const task = actor(() => undefined, { broker, actorName: "task" });
  for (const delay of [-1, Number.NaN, Number.POSITIVE_INFINITY, "10"]) {
    await assert.rejects(task.sendWithOptions({ delay: delay as number }), ConfigurationError, String(delay));
  }
});
