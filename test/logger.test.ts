import assert from "node:assert/strict";
import { test } from "node:test";

import { ConsoleLogger, redactUrl } from "../src/logger.js";

test("redactUrl hides passwords", () => {
  const cases: [string, string][] = [
    ["amqp://alice:S3cret@127.0.0.1:5672/%2F", "amqp://alice:***@127.0.0.1:5672/%2F"],
    ["amqp://alice:S3cret@127.0.0.1:1;amqp://bob:Other@127.0.0.1:2", "amqp://alice:***@127.0.0.1:1;amqp://bob:***@127.0.0.1:2"],
    ["redis://:S3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"],
    ["redis://127.0.0.1:6379/0?password=S3cret&db=1", "redis://127.0.0.1:6379/0?password=***&db=1"],
    ["amqp://127.0.0.1:5672", "amqp://127.0.0.1:5672"],
  ];
  for (const [input, expected] of cases) {
    const output = redactUrl(input);
    assert.equal(output, expected);
    assert.ok(!/S3cret|Other/.test(output), output);
  }
});

test("redactUrl handles unparsable text", () => {
  const output = redactUrl("not a url //user:S3cret@host and //other:Pw2@host2");
  assert.ok(!output.includes("S3cret"), output);
  assert.ok(!output.includes("Pw2"), output);
});

test("ConsoleLogger writes Dramatiq layout", () => {
  const lines: string[] = [];
  const logger = new ConsoleLogger({ level: "info", stream: { write: (text: string) => lines.push(text) } });
  logger.debug({}, "hidden");
  logger.warn({ logger: "melodramatiq.worker.Worker", messageId: "m-1", actorName: "add" }, "Something happened.");

  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\] \[PID \d+\] \[melodramatiq\.worker\.Worker\] \[WARNING\] Something happened\. \(messageId=m-1, actorName=add\)\n$/,
  );
});
