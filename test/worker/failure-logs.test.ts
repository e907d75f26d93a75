/** Log levels of failed actor calls: bugs at error, control-flow errors lower. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import { Retry, ShutdownError } from "../../src/errors.js";
import { Retries } from "../../src/middleware/retries.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";

test("retry request logs at debug", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Retries({ maxRetries: 0 })] });
  const again = actor(
    () => {
      throw new Retry("not yet");
    },
    { broker: fixture.broker, actorName: "again" },
  );

  try {
    await fixture.worker.start();
    const sent = await again.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    assert.equal(logs.find("error", "Failed to process message").length, 0);
    const requested = logs.find("debug", "Actor requested a retry of message again()");
    assert.equal(requested.length, 1);
    assert.equal(requested[0]?.fields["messageId"], sent.messageId);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("shutdown error logs at warn", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Retries({ maxRetries: 0 })] });
  const stopping = actor(
    () => {
      throw new ShutdownError("stopping");
    },
    { broker: fixture.broker, actorName: "stopping" },
  );

  try {
    await fixture.worker.start();
    await stopping.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    assert.equal(logs.find("error", "Failed to process message").length, 0);
    assert.equal(logs.find("warn", "was interrupted because the worker is stopping").length, 1);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});

test("other errors log at error", async () => {
  const logs = captureLogs();
  const fixture = createStubWorker({ middleware: [new Retries({ maxRetries: 0 })] });
  const broken = actor(
    () => {
      throw new TypeError("bug");
    },
    { broker: fixture.broker, actorName: "broken" },
  );

  try {
    await fixture.worker.start();
    await broken.send();
    await fixture.broker.join("default", { timeout: 5000, failFast: false });

    const failures = logs.find("error", "Failed to process message broken() with unhandled exception");
    assert.equal(failures.length, 1);
    assert.ok(failures[0]?.fields["err"] instanceof TypeError);
  } finally {
    await fixture.stop();
    logs.restore();
  }
});
