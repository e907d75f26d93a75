import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigurationError } from "../../src/errors.js";
import { EncodeError } from "../../src/message/encoding.js";
import { ResultFailureError, ResultMissingError, ResultTimeoutError, StubBackend } from "../../src/results/index.js";
import { addressOf, resultCase, resultsVector } from "./vector.js";

const message = { queueName: "spec_results", actorName: "compute", messageId: "stub-1" };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test("stub stores and reads values", async () => {
  const backend = new StubBackend();
  await backend.storeResult(message, { sum: 42, items: [1, 2.5, null, true, "é"] }, 600_000);
  assert.deepEqual(await backend.getResult(message), { sum: 42, items: [1, 2.5, null, true, "é"] });

  await backend.storeResult(message, undefined, 600_000);
  assert.equal(await backend.getResult(message), null);
});

test("stub reads failures as ResultFailureError", async () => {
  const backend = new StubBackend();
  const entry = resultCase("failure_exception");
  await backend.storeFailure(addressOf(entry.message), { type: "ValueError", msg: "boom é" }, 600_000);

  await assert.rejects(backend.getResult(addressOf(entry.message)), (error: unknown) => {
    assert.ok(error instanceof ResultFailureError);
    assert.equal(error.message, "actor raised ValueError: boom é");
    assert.equal(error.origExcType, "ValueError");
    assert.equal(error.origExcMsg, "boom é");
    return true;
  });
});

test("stub missing result rejects", async () => {
  const backend = new StubBackend();
  await assert.rejects(backend.getResult(addressOf(resultsVector.missing_result.message)), ResultMissingError);
  await assert.rejects(backend.getResult(message, { block: true, timeout: 20 }), ResultTimeoutError);
  await assert.rejects(backend.getResult(message, { block: true, timeout: 0 }), ResultTimeoutError);
});

test("stub result expires after TTL", async () => {
  const backend = new StubBackend();
  await backend.storeResult(message, 1, 20);
  await delay(60);

  await assert.rejects(backend.getResult(message), ResultMissingError);
  assert.equal(backend.size, 0);
});

test("stub blocking read resolves on store", async () => {
  const backend = new StubBackend();
  const reading = backend.getResult(message, { block: true, timeout: 5000 });
  const other = backend.getResult(message, { block: true, timeout: 5000 });
  await delay(10);

  await backend.storeResult(message, "done", 600_000);
  assert.equal(await reading, "done");
  assert.equal(await other, "done");
});

test("stub honours sub-second timeouts", async () => {
  // Unlike Redis, which polls once for a timeout under 1000 ms, the stub waits the full timeout.
  const backend = new StubBackend();
  const reading = backend.getResult(message, { block: true, timeout: 900 });
  await delay(10);

  await backend.storeResult(message, "late", 600_000);
  assert.equal(await reading, "late");
});

test("stub rejects values Python cannot decode", async () => {
  const backend = new StubBackend();
  await assert.rejects(backend.storeResult(message, new Date(0), 600_000), EncodeError);
  await assert.rejects(backend.getResult(message), ResultMissingError);
});

test("stub validates TTL and timeout", async () => {
  const backend = new StubBackend();
  await assert.rejects(backend.storeResult(message, 1, 0), ConfigurationError);
  await assert.rejects(backend.storeResult(message, 1, Number.NaN), ConfigurationError);
  await assert.rejects(backend.getResult(message, { block: true, timeout: -1 }), ConfigurationError);
  await assert.rejects(backend.getResult(message, { block: true, timeout: Number.POSITIVE_INFINITY }), ConfigurationError);
});
