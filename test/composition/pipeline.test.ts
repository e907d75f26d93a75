import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { StubBroker } from "../../src/brokers/stub/index.js";
import { pipeline, Pipeline } from "../../src/composition/index.js";
import { ConfigurationError, Retry } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { defaultMiddleware } from "../../src/middleware/defaults.js";
import { ResultFailureError, ResultMissingError, Results, StubBackend } from "../../src/results/index.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker, type StubFixture } from "../helpers/stub.js";
import { EnqueueRecorder, messageCase, vectorMessage } from "./support.js";

interface PipelineFixture extends StubFixture {
  recorder: EnqueueRecorder;
  backend: StubBackend;
}

/** Creates a stub broker and worker with the default middleware, Results on a stub backend, and an enqueue recorder. */
function createFixture(): PipelineFixture {
  const recorder = new EnqueueRecorder();
  const backend = new StubBackend();
  const fixture = createStubWorker({ middleware: [...defaultMiddleware(), new Results({ backend, storeResults: true }), recorder] });
  return { ...fixture, recorder, backend };
}

/** Builds the three messages of the pipeline_first_message vector, with its ids and timestamps. */
function vectorSteps(): Message[] {
  return [
    vectorMessage("add", [1, 2], 0x10),
    vectorMessage("add", [3], 0x11),
    vectorMessage("echo", ["ignored-result"], 0x12, { pipe_ignore: true }),
  ];
}

test("pipeline first message matches vector bytes", () => {
  const chain = pipeline(vectorSteps(), { broker: new StubBroker() });

  assert.equal(chain.messages[0]?.encode().toString("latin1"), messageCase("pipeline_first_message").encoded);
});

test("pipeline run enqueues vector bytes", async () => {
  const broker = new StubBroker();
  await pipeline(vectorSteps(), { broker }).run();

  const bodies = broker.queue("default").bodies;
  assert.equal(bodies.length, 1, "only the first step is enqueued");
  assert.equal(bodies[0]?.toString("latin1"), messageCase("pipeline_run_enqueued").encoded);
  assert.equal(broker.queue("default.DQ").bodies.length, 0, "no delay was asked for");
});

test("pipeline messages nest later steps", () => {
  const [first, second, third] = pipeline(vectorSteps(), { broker: new StubBroker() }).messages;

  assert.deepEqual(first?.options["pipe_target"], second?.toDict());
  assert.deepEqual(second?.options["pipe_target"], third?.toDict());
  assert.equal(third?.options["pipe_target"], undefined);
});

test("pipeline copies messages keeping ids", () => {
  const steps = vectorSteps();
  const chain = pipeline(steps, { broker: new StubBroker() });

  assert.deepEqual(
    chain.messages.map((message) => message.messageId),
    steps.map((message) => message.messageId),
  );
  assert.deepEqual(steps[0]?.options, {}, "building the chain leaves the caller's message alone");
  assert.equal(chain.length, 3);
});

test("pipeline flattens nested pipelines", () => {
  const broker = new StubBroker();
  const [a, b, c] = vectorSteps() as [Message, Message, Message];
  const nested = pipeline([pipeline([a, b], { broker }), c], { broker });
  const flat = pipeline([a, b, c], { broker });

  assert.equal(nested.length, 3);
  assert.equal(nested.messages[0]?.encode().toString("latin1"), flat.messages[0]?.encode().toString("latin1"));
});

test("pipeline rejects empty list and non-messages", () => {
  assert.throws(() => pipeline([]), ConfigurationError);
  assert.throws(() => pipeline([{ actorName: "add" } as unknown as Message]), /takes messages and pipelines/);
});

test("pipeline run uses larger delay", async () => {
  const recorder = new EnqueueRecorder();
  const broker = new StubBroker({ middleware: [recorder] });
  const first = vectorMessage("add", [1, 2], 0x20, { delay: 500 });
  const second = vectorMessage("add", [3], 0x21);

  const before = Date.now();
  await pipeline([first, second], { broker }).run({ delay: 100 });
  const after = Date.now();

  const [enqueued] = recorder.enqueued;
  assert.equal(enqueued?.queueName, "default.DQ");
  const eta = enqueued?.options["eta"] as number;
  assert.ok(eta >= before + 500, `eta ${eta} is at least 500 ms after the run started`);
  assert.ok(eta <= after + 500, `eta ${eta} is at most 500 ms after the run ended`);
  assert.equal(enqueued?.options["delay"], 500, "the delay option stays in the message, as in Python");

  await pipeline([vectorMessage("add", [1, 2], 0x22, { delay: 50 }), second], { broker }).run({ delay: 400 });
  const eta2 = recorder.enqueued[1]?.options["eta"] as number;
  assert.ok(eta2 >= after + 400, `run delay 400 beats message delay 50 (eta ${eta2})`);
});

test("pipeline run rejects invalid delay", async () => {
  const chain = pipeline(vectorSteps(), { broker: new StubBroker() });

  await assert.rejects(chain.run({ delay: -1 }), ConfigurationError);
});

test("pipeline passes results through steps", async () => {
  const fixture = createFixture();
  const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });

  try {
    await fixture.worker.start();
    const chain = await pipeline([add.message(1, 2), add.message(3), add.message(4)], { broker: fixture.broker }).run();

    assert.equal(await chain.getResult({ block: true, timeout: 10_000 }), 10);
    assert.deepEqual(await chain.getResults({ block: true, timeout: 10_000 }), [3, 6, 10]);
    assert.equal(await chain.completedCount(), 3);
    assert.equal(await chain.isCompleted(), true);
  } finally {
    await fixture.stop();
  }
});

test("pipeline appends previous result as last argument", async () => {
  const fixture = createFixture();
  const calls: unknown[][] = [];
  const record = actor(
    (...args: unknown[]) => {
      calls.push(args);
      return args.length;
    },
    { broker: fixture.broker, actorName: "record" },
  );

  try {
    await fixture.worker.start();
    const chain = await pipeline([record.message("a"), record.message("b", "c"), record.message()], { broker: fixture.broker }).run();
    await chain.getResult({ block: true, timeout: 10_000 });

    assert.deepEqual(calls, [["a"], ["b", "c", 1], [3]]);
  } finally {
    await fixture.stop();
  }
});

test("pipeline appends null for undefined result", async () => {
  const fixture = createFixture();
  const calls: unknown[][] = [];
  const quiet = actor(() => undefined, { broker: fixture.broker, actorName: "quiet" });
  const record = actor(
    (...args: unknown[]) => {
      calls.push(args);
    },
    { broker: fixture.broker, actorName: "record" },
  );

  try {
    await fixture.worker.start();
    const chain = await pipeline([quiet.message(), record.message("x")], { broker: fixture.broker }).run();
    await chain.getResult({ block: true, timeout: 10_000 });

    assert.deepEqual(calls, [["x", null]]);
  } finally {
    await fixture.stop();
  }
});

test("pipeline skips result for pipeIgnore message", async () => {
  const fixture = createFixture();
  const calls: unknown[][] = [];
  const add = actor((a: number, b: number) => a + b, { broker: fixture.broker, actorName: "add" });
  const echo = actor(
    (...args: unknown[]) => {
      calls.push(args);
      return args[0];
    },
    { broker: fixture.broker, actorName: "echo" },
  );

  try {
    await fixture.worker.start();
    const chain = await pipeline([add.message(1, 2), echo.messageWithOptions({ args: ["ignored-result"], pipeIgnore: true })], {
      broker: fixture.broker,
    }).run();

    assert.equal(await chain.getResult({ block: true, timeout: 10_000 }), "ignored-result");
    assert.deepEqual(calls, [["ignored-result"]]);
  } finally {
    await fixture.stop();
  }
});

test("pipeline skips result for pipeIgnore actor", async () => {
  const fixture = createFixture();
  const calls: unknown[][] = [];
  const fire = actor(() => "not passed on", { broker: fixture.broker, actorName: "fire", pipeIgnore: true });
  const record = actor(
    (...args: unknown[]) => {
      calls.push(args);
    },
    { broker: fixture.broker, actorName: "record" },
  );

  try {
    await fixture.worker.start();
    const chain = await pipeline([fire.message(), record.message("only")], { broker: fixture.broker }).run();
    await chain.getResult({ block: true, timeout: 10_000 });

    assert.deepEqual(calls, [["only"]]);
  } finally {
    await fixture.stop();
  }
});

test("pipeline delays step by its delay option", async () => {
  const fixture = createFixture();
  const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });

  try {
    await fixture.worker.start();
    const delayed = add.messageWithOptions({ args: [10], delay: 150 });
    const chain = await pipeline([add.message(1, 2), delayed], { broker: fixture.broker }).run();

    assert.equal(await chain.getResult({ block: true, timeout: 10_000 }), 13);
    const first = fixture.recorder.withId(chain.steps[0]?.messageId ?? "");
    assert.equal(first[0]?.queueName, "default", "the first step had no delay");
    const second = fixture.recorder.withId(delayed.messageId);
    assert.equal(second[0]?.queueName, "default.DQ", "the second step went through the delay queue");
    assert.equal(typeof second[0]?.options["eta"], "number");
  } finally {
    await fixture.stop();
  }
});

test("pipeline stops after failed step", async () => {
  const logs = captureLogs();
  const fixture = createFixture();
  const calls: string[] = [];
  const ok = actor(
    (label: string) => {
      calls.push(label);
      return label;
    },
    { broker: fixture.broker, actorName: "ok" },
  );
  const fail = actor(
    () => {
      calls.push("fail");
      throw new Error("step failed");
    },
    { broker: fixture.broker, actorName: "fail", maxRetries: 0 },
  );

  try {
    await fixture.worker.start();
    const chain = await pipeline([ok.message("first"), fail.message(), ok.message("never")], { broker: fixture.broker }).run();
    await fixture.broker.join("default", { timeout: 10_000, failFast: false });
    await fixture.worker.join();

    assert.deepEqual(calls, ["first", "fail"]);
    await assert.rejects(chain.getResult(), ResultMissingError, "the last step never ran");
    await assert.rejects(chain.getResults(), ResultFailureError);
    await assert.rejects(chain.completedCount(), ResultFailureError);
    assert.equal(fixture.broker.deadLetters.length, 1);
    assert.equal(
      fixture.recorder.enqueued.some((message) => message.actorName === "ok" && message.args[0] === "never"),
      false,
      "the step after the failure is never enqueued",
    );
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("pipeline continues after retried step succeeds", async () => {
  const logs = captureLogs();
  const fixture = createFixture();
  let attempts = 0;
  const flaky = actor(
    (value: number) => {
      attempts += 1;
      if (attempts === 1) {
        throw new Retry("try again", { delay: 10 });
      }
      return value * 2;
    },
    { broker: fixture.broker, actorName: "flaky" },
  );
  const add = actor((a: number, b?: number) => a + (b ?? 0), { broker: fixture.broker, actorName: "add" });

  try {
    await fixture.worker.start();
    const chain = await pipeline([flaky.message(5), add.message(1)], { broker: fixture.broker }).run();

    assert.equal(await chain.getResult({ block: true, timeout: 10_000 }), 11);
    assert.deepEqual(await chain.getResults(), [10, 11]);
    assert.equal(attempts, 2);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("pipeline logs invalid pipe_target", async () => {
  const logs = captureLogs();
  const fixture = createFixture();
  const calls: number[] = [];
  const noop = actor(
    () => {
      calls.push(1);
    },
    { broker: fixture.broker, actorName: "noop" },
  );

  try {
    await fixture.worker.start();
    const sent = await fixture.broker.enqueue(
      new Message({ queueName: "default", actorName: noop.actorName, args: [], options: { pipe_target: { actor_name: "missing" } } }),
    );
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.deepEqual(calls, [1]);
    assert.equal(fixture.broker.deadLetters.length, 0, "the message itself succeeded");
    const errors = logs.find("error", "invalid pipe_target");
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.fields["messageId"], sent.messageId);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("pipeline results need Results middleware", async () => {
  const chain = pipeline(vectorSteps(), { broker: new StubBroker() });

  await assert.rejects(chain.getResult(), /no Results middleware/);
  await assert.rejects(chain.getResults(), ConfigurationError);
});

test("pipeline reads results from given backend", async () => {
  const backend = new StubBackend();
  const chain = pipeline(vectorSteps(), { broker: new StubBroker() });
  for (const [index, step] of chain.steps.entries()) {
    await backend.storeResult(step, index, 60_000);
  }

  assert.deepEqual(await chain.getResults({ backend }), [0, 1, 2]);
  assert.equal(await chain.getResult({ backend }), 2);
});

test("pipeline is a Pipeline instance", () => {
  assert.ok(pipeline(vectorSteps(), { broker: new StubBroker() }) instanceof Pipeline);
});
