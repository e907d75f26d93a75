import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { ConfigurationError } from "../../src/errors.js";
import { Message, type MessageDict } from "../../src/message/message.js";
import { Callbacks, type CallbackFailure } from "../../src/middleware/callbacks.js";
import { defaultMiddleware } from "../../src/middleware/defaults.js";
import { Pipelines } from "../../src/middleware/pipelines.js";
import { Retries } from "../../src/middleware/retries.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";
import { EnqueueRecorder, FIXED_CLOCK, messageCase, vectorId } from "../composition/support.js";

/** Python's ValueError, so the payload type matches the vector. */
class ValueError extends Error {
  override name = "ValueError";
}

/** Members of a callback message other than its own id and timestamp, which are new for every callback. */
function withoutIdentity(dict: MessageDict): Omit<MessageDict, "message_id" | "message_timestamp"> {
  const { message_id: _id, message_timestamp: _timestamp, ...rest } = dict;
  return rest;
}

test("default stack orders Callbacks before Retries", () => {
  const names = defaultMiddleware().map((middleware) => middleware.name);

  assert.deepEqual(names.slice(-3), ["Callbacks", "Pipelines", "Retries"]);
});

test("onSuccess payload matches vector", async () => {
  const recorder = new EnqueueRecorder();
  const fixture = createStubWorker({ middleware: [...defaultMiddleware(), recorder] });
  const received: unknown[][] = [];
  actor((value: number) => value, { broker: fixture.broker, actorName: "identity", onSuccess: "print_result" });
  actor(
    (...args: unknown[]) => {
      received.push(args);
    },
    { broker: fixture.broker, actorName: "print_result" },
  );
  const expected = messageCase("on_success_callback").decoded as unknown as MessageDict;

  try {
    await fixture.worker.start();
    // The processed message of the vector has no options, so the actor option names the callback.
    await fixture.broker.enqueue(
      new Message({ queueName: "default", actorName: "identity", args: [42], messageId: vectorId(0x18), messageTimestamp: FIXED_CLOCK }),
    );
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.deepEqual(received, [expected.args]);
    const callback = recorder.enqueued.find((message) => message.actorName === "print_result");
    assert.ok(callback !== undefined, "a callback message was enqueued");
    assert.deepEqual(withoutIdentity(callback.toDict()), withoutIdentity(expected));
    assert.notEqual(callback.messageId, vectorId(0x18), "the callback is a new message");
  } finally {
    await fixture.stop();
  }
});

test("onFailure payload matches vector on every attempt", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [...defaultMiddleware()] });
  const received: [MessageDict, CallbackFailure][] = [];
  actor(
    (x: string) => {
      throw new ValueError(`flaky failed with '${x}'`);
    },
    { broker: fixture.broker, actorName: "flaky", onFailure: "print_error", maxRetries: 1, minBackoff: 1, maxBackoff: 5 },
  );
  actor(
    (dict: MessageDict, failure: CallbackFailure) => {
      received.push([dict, failure]);
    },
    { broker: fixture.broker, actorName: "print_error" },
  );
  const expected = messageCase("on_failure_callback").decoded.args as [MessageDict, CallbackFailure];

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(
      new Message({ queueName: "default", actorName: "flaky", args: ["x"], messageId: vectorId(0x19), messageTimestamp: FIXED_CLOCK }),
    );
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });
    await fixture.worker.join();

    assert.equal(received.length, 2, "one callback per failed attempt, the retried one included");
    const [dict, failure] = received[0] ?? [];
    assert.deepEqual(failure, expected[1]);
    assert.deepEqual(Object.keys(dict ?? {}), Object.keys(expected[0]));
    assert.deepEqual(Object.keys(dict?.options ?? {}), Object.keys(expected[0].options), "Retries stamped its options first");
    assert.equal(dict?.options["retries"], 1);
    assert.equal(typeof dict?.options["traceback"], "string");
    assert.equal(typeof dict?.options["requeue_timestamp"], "number");
    assert.deepEqual(dict?.args, expected[0].args);
    assert.equal(dict?.message_id, expected[0].message_id);
    assert.equal(dict?.message_timestamp, expected[0].message_timestamp);
    assert.equal(received[1]?.[0].options["retries"], 2);
    assert.deepEqual(received[1]?.[1], expected[1]);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("onFailure names melodramatiq errors as Python does", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Callbacks(), new Retries({ maxRetries: 0 })] });
  const received: CallbackFailure[] = [];
  class Unnamed extends Error {}
  actor(
    () => {
      throw new Unnamed("no name set");
    },
    { broker: fixture.broker, actorName: "work", onFailure: "report" },
  );
  actor(
    (_dict: MessageDict, failure: CallbackFailure) => {
      received.push(failure);
    },
    { broker: fixture.broker, actorName: "report" },
  );

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(new Message({ queueName: "default", actorName: "work", args: [] }));
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });
    await fixture.worker.join();

    assert.deepEqual(received, [{ type: "Unnamed", message: "no name set" }], "the class name stands in for the default name Error");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("onSuccess sends null for undefined result", async () => {
  const fixture = createStubWorker({ middleware: [new Callbacks()] });
  const received: unknown[] = [];
  const done = actor(
    (_dict: MessageDict, result: unknown) => {
      received.push(result);
    },
    { broker: fixture.broker, actorName: "done" },
  );
  const quiet = actor(() => undefined, { broker: fixture.broker, actorName: "quiet", onSuccess: done });

  try {
    await fixture.worker.start();
    await quiet.send();
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.deepEqual(received, [null]);
  } finally {
    await fixture.stop();
  }
});

test("message option overrides actor option", async () => {
  const fixture = createStubWorker({ middleware: [new Callbacks()] });
  const calls: string[] = [];
  const first = actor(
    () => {
      calls.push("first");
    },
    { broker: fixture.broker, actorName: "first" },
  );
  const second = actor(
    () => {
      calls.push("second");
    },
    { broker: fixture.broker, actorName: "second" },
  );
  const work = actor(() => 1, { broker: fixture.broker, actorName: "work", onSuccess: first });

  try {
    await fixture.worker.start();
    await work.sendWithOptions({ onSuccess: second });
    await work.sendWithOptions({ onSuccess: "" });
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.deepEqual(calls.sort(), ["first", "second"], "an empty message value falls through to the actor's");
  } finally {
    await fixture.stop();
  }
});

test("actor object becomes its name on the wire", () => {
  const broker = new StubBroker();
  const notify = actor(() => undefined, { broker, actorName: "notify" });
  const work = actor(() => undefined, { broker, actorName: "work" });

  const message = work.messageWithOptions({ onSuccess: notify, onFailure: notify, onRetryExhausted: notify });

  assert.deepEqual(message.options, { on_success: "notify", on_failure: "notify", on_retry_exhausted: "notify" });
  assert.match(message.encode().toString("latin1"), /"on_success":"notify"/);
});

test("missing callback actor is logged", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Callbacks()] });
  const work = actor(() => 1, { broker: fixture.broker, actorName: "work", onSuccess: "not_declared" });

  try {
    await fixture.worker.start();
    const sent = await work.send();
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    const errors = logs.find("error", "not_declared");
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.fields["messageId"], sent.messageId);
    assert.equal(fixture.broker.deadLetters.length, 0, "the message itself succeeded");
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid message option is ignored with warning", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Callbacks()] });
  const calls: string[] = [];
  actor(
    () => {
      calls.push("fallback");
    },
    { broker: fixture.broker, actorName: "fallback" },
  );
  actor(() => 1, { broker: fixture.broker, actorName: "work", onSuccess: "fallback" });

  try {
    await fixture.worker.start();
    await fixture.broker.enqueue(new Message({ queueName: "default", actorName: "work", args: [], options: { on_success: 5 } }));
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.deepEqual(calls, ["fallback"]);
    assert.equal(logs.find("warn", "invalid on_success").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("invalid actor option is rejected", () => {
  const broker = new StubBroker({ middleware: [new Callbacks()] });

  assert.throws(() => actor(() => 1, { broker, actorName: "bad", onSuccess: 5 as unknown as string }), ConfigurationError);
  assert.throws(() => actor(() => 1, { broker, actorName: "empty", onFailure: "" }), /invalid onFailure/);
  assert.equal(broker.actors.size, 0);
});

test("callback options need Callbacks middleware", () => {
  const broker = new StubBroker({ middleware: [new Pipelines()] });

  assert.throws(() => actor(() => 1, { broker, actorName: "work", onSuccess: "x" }), /unknown option "onSuccess"/);
});
