import assert from "node:assert/strict";
import { test } from "node:test";

import { DecodeError } from "../../src/errors.js";
import { Message } from "../../src/message/message.js";
import { loadVector } from "../helpers/vectors.js";

interface MessageCase {
  name: string;
  encoded: string;
  decoded: Record<string, unknown> | null;
}

interface DecodeCase {
  label: string;
  input?: string;
  input_base64?: string;
  ok: boolean;
  note: string;
}

const vectors = loadVector("messages.json") as { cases: MessageCase[]; decode_cases: DecodeCase[] };

// Python accepts these and fails later (or turns a string into a tuple of
// characters); melodramatiq rejects them at decode time so that the message
// is dead-lettered with a clear error instead of breaking a middleware.
const strictlyRejected = new Set(["args_string", "args_object", "kwargs_null", "options_null"]);

test("vector messages decode to their fields", () => {
  for (const vector of vectors.cases) {
    const message = Message.decode(Buffer.from(vector.encoded, "utf8"));
    const expected = vector.decoded;
    if (expected === null) {
      continue;
    }

    assert.equal(message.queueName, expected["queue_name"], vector.name);
    assert.equal(message.actorName, expected["actor_name"], vector.name);
    assert.equal(message.messageId, expected["message_id"], vector.name);
    assert.equal(message.messageTimestamp, expected["message_timestamp"], vector.name);
  }
});

test("vector messages re-encode byte for byte", () => {
  // Cases whose args hold integral Python floats (1.0) come back as JS
  // numbers and re-encode as ints; the encoding tests cover them with pyFloat.
  const floatCases = new Set(["floats", "kwargs_only", "non_finite_floats"]);
  for (const vector of vectors.cases) {
    if (floatCases.has(vector.name)) {
      continue;
    }
    const message = Message.decode(Buffer.from(vector.encoded, "utf8"));
    assert.equal(message.encode().toString("latin1"), vector.encoded, vector.name);
  }
});

test("decode cases follow Python or fail clearly", () => {
  for (const vector of vectors.decode_cases) {
    const input = vector.input_base64 === undefined ? Buffer.from(vector.input ?? "", "utf8") : Buffer.from(vector.input_base64, "base64");
    const shouldDecode = vector.ok && !strictlyRejected.has(vector.label);
    if (shouldDecode) {
      assert.doesNotThrow(() => Message.decode(input), vector.label);
    } else {
      assert.throws(() => Message.decode(input), DecodeError, vector.label);
    }
  }
});

test("decode error names the problem", () => {
  const cases: [string | Buffer, RegExp][] = [
    [Buffer.from([0x80, 0xff, 0x00]), /not valid UTF-8/],
    ["not json", /not valid JSON/],
    ["[1,2]", /must be a JSON object/],
    ['{"queue_name":"q","args":[],"kwargs":{},"options":{}}', /"actor_name" is missing/],
    ['{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":{},"eta":1}', /unknown member "eta"/],
    ['{"queue_name":"q","actor_name":"a","args":null,"kwargs":{},"options":{}}', /"args" must be an array/],
    ['{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":null}', /"options" must be an object/],
    ['\ufeff{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":{}}', /not valid JSON/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(() => Message.decode(input), (error: unknown) => error instanceof DecodeError && pattern.test(error.message), String(input));
  }
});

test("missing id and timestamp are generated", () => {
  const before = Date.now();
  const first = Message.decode('{"queue_name":"default","actor_name":"add","args":[1,2],"kwargs":{},"options":{}}');
  const second = Message.decode('{"queue_name":"default","actor_name":"add","args":[1,2],"kwargs":{},"options":{}}');

  assert.notEqual(first.messageId, second.messageId);
  assert.ok(first.messageTimestamp >= before);
});

test("prototype keys stay plain data", () => {
  const message = Message.decode(
    '{"queue_name":"default","actor_name":"a","args":[{"__proto__":{"polluted":1}}],"kwargs":{"constructor":{"prototype":{"x":1}}},"options":{"__proto__":{"polluted":2}}}',
  );

  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  assert.equal(Object.hasOwn(message.options, "__proto__"), true);
  assert.equal(Object.hasOwn(message.args[0] as object, "__proto__"), true);
});

test("copy keeps id and timestamp", () => {
  const original = new Message({ queueName: "q", actorName: "a", args: [1], options: { retries: 1 } });
  const copy = original.copy({ queueName: "q.DQ" });

  assert.equal(copy.messageId, original.messageId);
  assert.equal(copy.messageTimestamp, original.messageTimestamp);
  copy.options["retries"] = 2;
  assert.equal(original.options["retries"], 1);
});

test("toString renders the call", () => {
  const message = new Message({ queueName: "q", actorName: "send_email", args: ["a@example.com"], kwargs: { subject: "Hi" } });
  assert.equal(message.toString(), "send_email('a@example.com', subject='Hi')");
});
