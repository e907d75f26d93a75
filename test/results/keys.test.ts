import assert from "node:assert/strict";
import { test } from "node:test";

import { Message } from "../../src/message/message.js";
import { StubBackend } from "../../src/results/index.js";
import { decodeStoredValue, describeError, encodeFailure, encodeResultValue } from "../../src/results/envelope.js";
import { SkipMessage, ActorNotFoundError, TimeLimitExceededError } from "../../src/errors.js";
import { addressOf, resultsVector } from "./vector.js";

test("key matches Python MD5 keys", () => {
  const backend = new StubBackend();
  for (const entry of resultsVector.results) {
    assert.equal(backend.buildMessageKey(addressOf(entry.message)), entry.key, entry.case);
    assert.equal(entry.key, entry.md5_of_source, entry.case);
  }

  const missing = resultsVector.missing_result;
  assert.equal(backend.buildMessageKey(addressOf(missing.message)), missing.key);
});

test("key matches Python prefix keys", () => {
  const backend = new StubBackend({ useNamespacePrefixKeys: true });
  for (const entry of resultsVector.results) {
    assert.equal(backend.buildMessageKey(addressOf(entry.message)), entry.key_with_use_namespace_prefix_keys, entry.case);
    assert.equal(entry.key_with_use_namespace_prefix_keys, entry.key_source_string, entry.case);
  }
});

test("key uses canonical queue name", () => {
  const backend = new StubBackend({ useNamespacePrefixKeys: true });
  const message = new Message({ queueName: "spec_results.DQ", actorName: "compute", args: [], messageId: "m-1" });

  assert.equal(backend.buildMessageKey(message), "dramatiq-results:spec_results:compute:m-1");
  assert.equal(backend.buildMessageKey({ ...addressOf(message.toDict()), queueName: "spec_results.XQ" }), "dramatiq-results:spec_results:compute:m-1");
});

test("key uses custom namespace", () => {
  const backend = new StubBackend({ namespace: "app-results", useNamespacePrefixKeys: true });
  assert.equal(backend.buildMessageKey({ queueName: "q", actorName: "a", messageId: "id" }), "app-results:q:a:id");
});

test("key hashes non-ASCII source as UTF-8", () => {
  const backend = new StubBackend({ namespace: "é" });
  // Python: hashlib.md5("é:q:a:id".encode()).hexdigest(); Latin-1 bytes would give 36432a74….
  assert.equal(backend.buildMessageKey({ queueName: "q", actorName: "a", messageId: "id" }), "14df437d71d1760d80e5720a9ec652de");
});

test("envelope encodes values like Python", () => {
  assert.equal(encodeResultValue(undefined), "null");
  assert.equal(encodeResultValue(null), "null");
  assert.equal(encodeResultValue(7), "7");
  assert.equal(encodeResultValue({ sum: 42, items: [1, 2.5, null, true, "é"] }), '{"sum":42,"items":[1,2.5,null,true,"\\u00e9"]}');
});

test("envelope names errors the Python way", () => {
  class ValueError extends Error {
    override name = "ValueError";
  }
  class UnnamedError extends Error {}

  assert.deepEqual(describeError(new ValueError("boom é")), { type: "ValueError", msg: "boom é" });
  assert.deepEqual(describeError(new UnnamedError("x")), { type: "UnnamedError", msg: "x" });
  assert.deepEqual(describeError(new Error("plain")), { type: "Error", msg: "plain" });
  assert.deepEqual(describeError(new TypeError("t")), { type: "TypeError", msg: "t" });
  assert.deepEqual(describeError(new ActorNotFoundError("gone")), { type: "ActorNotFound", msg: "gone" });
  assert.deepEqual(describeError(new TimeLimitExceededError("slow")), { type: "TimeLimitExceeded", msg: "slow" });
  assert.deepEqual(describeError(new SkipMessage("Message age limit exceeded")), { type: "SkipMessage", msg: "Message age limit exceeded" });
});

test("envelope decodes failures and values", () => {
  assert.deepEqual(decodeStoredValue(encodeFailure({ type: "ValueError", msg: "m" })), { ok: false, failure: { type: "ValueError", msg: "m" } });
  assert.deepEqual(decodeStoredValue('{"__t":"dramatiq.results.Result"}'), { ok: false, failure: { type: "Exception", msg: "" } });
  assert.deepEqual(decodeStoredValue('{"__t":"other","exn":1}'), { ok: true, value: { __t: "other", exn: 1 } });
  assert.deepEqual(decodeStoredValue("NaN"), { ok: true, value: Number.NaN });
  assert.deepEqual(decodeStoredValue("18446744073709551616"), { ok: true, value: 18446744073709551616n });
});
