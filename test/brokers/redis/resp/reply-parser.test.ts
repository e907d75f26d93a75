/** The RESP2 reply parser and command encoder, on hand-written byte streams. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { encodeCommand } from "../../../../src/brokers/redis/resp/encode.js";
import { ProtocolError, ReplyError } from "../../../../src/brokers/redis/resp/errors.js";
import { ReplyParser, type Reply } from "../../../../src/brokers/redis/resp/reply-parser.js";

/** Parses `chunks` in order and returns the replies, strings as Buffers when `buffers` is set. */
function parse(chunks: readonly Buffer[], buffers = false): Reply[] {
  const replies: Reply[] = [];
  const parser = new ReplyParser({ onReply: (reply) => replies.push(reply), wantsBuffers: () => buffers });
  for (const chunk of chunks) {
    parser.feed(chunk);
  }
  return replies;
}

const STREAM = Buffer.from(
  "+OK\r\n" +
    "-ERR wrong number of arguments\r\n" +
    ":42\r\n" +
    ":-7\r\n" +
    "$5\r\nhello\r\n" +
    "$-1\r\n" +
    "*-1\r\n" +
    "*0\r\n" +
    "$0\r\n\r\n" +
    "$4\r\na\r\nb\r\n" +
    "*3\r\n*2\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*1\r\n-NOSCRIPT No matching script\r\n" +
    "$6\r\nh\u00e9l\u00e9\r\n".replace("6", String(Buffer.byteLength("h\u00e9l\u00e9"))),
);

function expected(): unknown[] {
  return [
    "OK",
    new ReplyError("ERR wrong number of arguments"),
    42,
    -7,
    "hello",
    null,
    null,
    [],
    "",
    "a\r\nb",
    [[1, "abc"], null, [new ReplyError("NOSCRIPT No matching script")]],
    "h\u00e9l\u00e9",
  ];
}

test("parser reads every reply type", () => {
  assert.deepEqual(parse([STREAM]), expected());
});

test("parser handles byte-by-byte chunks", () => {
  const bytes = [...STREAM].map((byte) => Buffer.from([byte]));
  assert.deepEqual(parse(bytes), expected());
});

test("parser handles every two-way split", () => {
  for (let split = 1; split < STREAM.length; split++) {
    const replies = parse([STREAM.subarray(0, split), STREAM.subarray(split)]);
    assert.deepEqual(replies, expected(), `split at byte ${split}`);
  }
});

test("parser keeps Buffers in buffer mode", () => {
  const binary = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0x80]);
  const stream = Buffer.concat([Buffer.from("*2\r\n$5\r\n"), binary, Buffer.from("\r\n+OK\r\n")]);
  const [reply] = parse([stream], true);
  assert.ok(Array.isArray(reply));
  assert.ok(Buffer.isBuffer(reply[0]));
  assert.deepEqual(reply[0], binary);
  assert.deepEqual(reply[1], Buffer.from("OK"));
});

test("parser decodes each reply in its own mode", () => {
  const modes = [true, false];
  const replies: Reply[] = [];
  const parser = new ReplyParser({ onReply: (reply) => replies.push(reply), wantsBuffers: () => modes[replies.length] ?? false });
  parser.feed(Buffer.from("$1\r\na\r\n$1\r\nb\r\n"));
  assert.deepEqual(replies, [Buffer.from("a"), "b"]);
});

test("parser joins a 32 MiB bulk string once", () => {
  const size = 32 * 1024 * 1024;
  const body = Buffer.alloc(size, 0x61);
  body[0] = 0x62;
  body[size - 1] = 0x63;
  const stream = Buffer.concat([Buffer.from(`$${size}\r\n`), body, Buffer.from("\r\n:1\r\n")]);

  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += 65_536) {
    chunks.push(stream.subarray(offset, offset + 65_536));
  }
  const started = performance.now();
  const replies = parse(chunks, true);
  const elapsed = performance.now() - started;

  assert.equal(replies.length, 2);
  assert.ok(Buffer.isBuffer(replies[0]));
  assert.equal(replies[0].length, size);
  assert.ok(replies[0].equals(body), "the body arrives unchanged");
  assert.equal(replies[1], 1);
  // Re-copying the partial body on each of the 512 chunks would take seconds.
  assert.ok(elapsed < 2000, `parsing took ${elapsed.toFixed(0)} ms`);
});

test("parser handles a large nested array in small chunks", () => {
  const count = 50_000;
  let text = `*${count}\r\n`;
  for (let index = 0; index < count; index++) {
    text += `*2\r\n$${String(index).length}\r\n${index}\r\n:${index}\r\n`;
  }
  const stream = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; offset += 7) {
    chunks.push(stream.subarray(offset, offset + 7));
  }

  const [reply] = parse(chunks);
  assert.ok(Array.isArray(reply));
  assert.equal(reply.length, count);
  assert.deepEqual(reply[0], ["0", 0]);
  assert.deepEqual(reply[count - 1], [String(count - 1), count - 1]);
});

test("parser rejects bytes that are not RESP2", () => {
  assert.throws(() => parse([Buffer.from("?what\r\n")]), ProtocolError);
  assert.throws(() => parse([Buffer.from(":12x\r\n")]), ProtocolError);
  assert.throws(() => parse([Buffer.from("+OK\rX")]), ProtocolError);
});

test("encoder writes arrays of bulk strings", () => {
  const body = Buffer.from([0x00, 0xff]);
  const pieces = encodeCommand(["SET", "k\u00e9", body, 12]);
  assert.equal(pieces.length, 3, "the Buffer argument is a piece of its own");
  assert.equal(pieces[1], body, "the Buffer is not copied");
  const bytes = Buffer.concat(pieces.map((piece) => (Buffer.isBuffer(piece) ? piece : Buffer.from(piece))));
  assert.deepEqual(bytes, Buffer.concat([Buffer.from("*4\r\n$3\r\nSET\r\n$3\r\nk\u00e9\r\n$2\r\n"), body, Buffer.from("\r\n$2\r\n12\r\n")]));
});
