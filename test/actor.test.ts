import assert from "node:assert/strict";
import { test } from "node:test";

import { actor, isActor } from "../src/actor.js";
import { getBroker, setBroker } from "../src/broker.js";
import { StubBroker } from "../src/brokers/stub/index.js";
import { ConfigurationError } from "../src/errors.js";
import { Message } from "../src/message/message.js";

test("actor name defaults to function name", () => {
  const broker = new StubBroker();
  function sendWelcomeEmail(_to: string): void {}
  const welcome = actor(sendWelcomeEmail, { broker });

  assert.equal(welcome.actorName, "sendWelcomeEmail");
  assert.equal(welcome.queueName, "default");
  assert.equal(welcome.priority, 0);
  assert.equal(broker.getActor("sendWelcomeEmail"), welcome);
  assert.ok(isActor(welcome));
});

test("actor name can match a Python actor", () => {
  const broker = new StubBroker();
  const welcome = actor((_to: string) => undefined, { broker, actorName: "send_welcome_email", queueName: "emails" });

  assert.equal(welcome.actorName, "send_welcome_email");
  assert.deepEqual([...broker.getDeclaredQueues()], ["emails"]);
  assert.deepEqual([...broker.getDeclaredDelayQueues()], ["emails.DQ"]);
});

test("calling an actor runs the function", async () => {
  const broker = new StubBroker();
  const add = actor((a: number, b: number) => a + b, { broker, actorName: "add" });

  assert.equal(add(1, 2), 3);
  assert.equal(add.call(undefined, 2, 3), 5);
  assert.equal(broker.queue("default").bodies.length, 0);
});

test("message builds without sending", () => {
  const broker = new StubBroker();
  const add = actor((a: number, b: number) => a + b, { broker, actorName: "add" });
  const message = add.message(1, 2);

  assert.ok(message instanceof Message);
  assert.deepEqual(message.args, [1, 2]);
  assert.deepEqual(message.kwargs, {});
  assert.deepEqual(message.options, {});
  assert.match(message.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(Number.isInteger(message.messageTimestamp));
  assert.equal(broker.queue("default").bodies.length, 0);
});

test("messageWithOptions uses wire option names", () => {
  const broker = new StubBroker();
  const add = actor((a: number, b: number) => a + b, { broker, actorName: "add" });
  const message = add.messageWithOptions({ args: [1, 2], maxRetries: 5, timeLimit: 2000, brokerPriority: 3, delay: 2500 });

  assert.deepEqual(message.options, { max_retries: 5, time_limit: 2000, broker_priority: 3, delay: 2500 });
});

test("send enqueues encoded message", async () => {
  const broker = new StubBroker();
  const add = actor((a: number, b: number) => a + b, { broker, actorName: "add" });
  const sent = await add.send(1, 2);
  const bodies = broker.queue("default").bodies;

  assert.equal(bodies.length, 1);
  const decoded = Message.decode(bodies[0]!);
  assert.equal(decoded.messageId, sent.messageId);
  assert.deepEqual(decoded.args, [1, 2]);
});

test("sendWithOptions with delay targets delay queue", async () => {
  const broker = new StubBroker();
  const add = actor((a: number, b: number) => a + b, { broker, actorName: "add" });
  const before = Date.now();
  const sent = await add.sendWithOptions({ args: [1, 2], delay: 10_000 });

  assert.equal(sent.queueName, "default.DQ");
  assert.ok((sent.options["eta"] as number) >= before + 10_000);
  assert.equal(Object.hasOwn(sent.options, "delay"), false);
  assert.equal(broker.queue("default.DQ").bodies.length, 1);
});

test("kwargs reach the function as trailing object", () => {
  const broker = new StubBroker();
  const sendEmail = actor((to: string, options?: { subject?: string }) => `${to}:${options?.subject ?? ""}`, { broker, actorName: "send_email" });

  assert.equal(sendEmail.invoke(["a@example.com"], { subject: "Hi" }), "a@example.com:Hi");
  assert.equal(sendEmail.invoke(["a@example.com"], {}), "a@example.com:");
});

test("unknown actor option is rejected", () => {
  const broker = new StubBroker();
  assert.throws(
    () => actor(() => undefined, { broker, actorName: "x", ...({ max_retries: 3 } as object) }),
    (error: unknown) => error instanceof ConfigurationError && /"max_retries"/.test(error.message) && /maxRetries/.test(error.message),
  );
  assert.throws(
    () => actor(() => undefined, { broker, actorName: "y", ...({ storeResults: true } as object) }),
    (error: unknown) => error instanceof ConfigurationError && /add that middleware/.test(error.message),
  );
});

test("invalid queue names are rejected", () => {
  const broker = new StubBroker();
  for (const queueName of ["", "1abc", "has space", "tasks.DQ", "tasks.XQ", "ümlaut"]) {
    assert.throws(() => actor(() => undefined, { broker, actorName: `a${Math.random()}`, queueName }), ConfigurationError, queueName);
  }
  for (const queueName of ["_private", "emails.high-priority", "A_b-c.d"]) {
    actor(() => undefined, { broker, actorName: `ok-${queueName}`, queueName });
  }
});

test("duplicate actor name is rejected", () => {
  const broker = new StubBroker();
  actor(() => undefined, { broker, actorName: "same" });
  assert.throws(() => actor(() => undefined, { broker, actorName: "same" }), /already declared/);
});

test("anonymous function needs actorName", () => {
  const broker = new StubBroker();
  assert.throws(() => actor((() => () => undefined)(), { broker }), /actorName/);
});

test("actor without broker uses global broker", () => {
  const broker = new StubBroker();
  setBroker(broker);
  const named = actor(function globalOne() {});
  assert.equal(named.broker, broker);
  assert.equal(getBroker(), broker);
});

test("sendWithOptions rejects bad args and kwargs", async () => {
  const broker = new StubBroker();
  const task = actor((..._args: unknown[]) => undefined, { broker, actorName: "task" });
  const invalid: Record<string, unknown>[] = [{ args: { a: 1 } }, { args: "abc" }, { kwargs: [1, 2] }, { kwargs: null }, { kwargs: "x" }];
  for (const options of invalid) {
    await assert.rejects(task.sendWithOptions(options), ConfigurationError, JSON.stringify(options));
  }
  assert.equal(broker.queue("default").bodies.length, 0);
});
