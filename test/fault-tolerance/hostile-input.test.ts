/**
 * Messages from other producers that do not follow the rules, on both
 * brokers: members of the wrong type, nesting past the depth limit,
 * `__proto__` and `constructor` keys, actor names that are also names of
 * Object.prototype members, and a 20 MB message. None of them may crash
 * the worker; what cannot be processed is dead-lettered once, with an
 * error log that names the problem.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import { Retry } from "../../src/errors.js";
import { EncodeError } from "../../src/message/encoding.js";
import type { TaskContext } from "../../src/worker/context.js";
import { Worker } from "../../src/worker/worker.js";
import { RABBITMQ_URL, watchProcessErrors } from "../brokers/rabbitmq/support.js";
import { useServers } from "./servers.js";
import { uniqueName, waitFor } from "./support.js";

const servers = useServers();

/** One broker with a worker, and raw access to its queue as a foreign producer has it. */
interface Target {
  readonly broker: Broker;
  readonly worker: Worker;
  readonly queueName: string;
  /** Puts a raw body on the queue; `redisMessageId` is the id a Redis producer lists it under. */
  push(body: string | Buffer, redisMessageId?: string): Promise<void>;
  /** Messages in `<q>.XQ`. */
  deadLettered(): Promise<number>;
  /** Messages in `<q>` still waiting or unacked (Redis), or waiting (RabbitMQ). */
  remaining(): Promise<number>;
  stop(): Promise<void>;
}

interface BrokerCase {
  readonly name: string;
  readonly kind: "redis" | "rabbitmq";
  create(): Target;
}

function createTarget(broker: Broker, queueName: string, access: Pick<Target, "push" | "deadLettered" | "remaining">): Target {
  const worker = new Worker(broker, { concurrency: 2, shutdownTimeout: 5000, queues: [queueName] });
  return {
    broker,
    worker,
    queueName,
    ...access,
    async stop() {
      await worker.stop();
      await broker.close();
    },
  };
}

const cases: BrokerCase[] = [
  {
    name: "Redis",
    kind: "redis",
    create() {
      const namespace = uniqueName("hostile");
      servers.namespaces.push(namespace);
      const queueName = "ft_hostile";
      return createTarget(new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace }), queueName, {
        async push(body, redisMessageId = randomUUID()) {
          await servers.admin.hset(`${namespace}:${queueName}.msgs`, redisMessageId, body);
          await servers.admin.rpush(`${namespace}:${queueName}`, redisMessageId);
        },
        deadLettered: () => servers.admin.zcard(`${namespace}:${queueName}.XQ`),
        remaining: () => servers.admin.hlen(`${namespace}:${queueName}.msgs`),
      });
    },
  },
  {
    name: "RabbitMQ",
    kind: "rabbitmq",
    create() {
      const queueName = uniqueName("hostile");
      servers.queues.push(queueName);
      return createTarget(new RabbitmqBroker({ url: RABBITMQ_URL }), queueName, {
        push(body) {
          servers.raw.channel.sendToQueue(queueName, typeof body === "string" ? Buffer.from(body, "utf8") : body, { persistent: true });
          return Promise.resolve();
        },
        deadLettered: () => servers.raw.count(`${queueName}.XQ`),
        remaining: () => servers.raw.count(queueName),
      });
    },
  },
];

/** Builds the wire text of a message, with `redis_message_id` set the way a Redis producer sets it. */
function wireBody(queueName: string, members: Record<string, unknown>): { text: string; redisMessageId: string } {
  const redisMessageId = randomUUID();
  const dict = {
    queue_name: queueName,
    actor_name: "echo",
    args: [],
    kwargs: {},
    options: { redis_message_id: redisMessageId },
    message_id: randomUUID(),
    message_timestamp: Date.now(),
    ...members,
  };
  return { text: JSON.stringify(dict), redisMessageId };
}

/** Returns the nesting depth of nested single-element arrays, without recursion. */
function arrayDepth(value: unknown): number {
  let depth = 0;
  let current = value;
  while (Array.isArray(current)) {
    depth += 1;
    current = current[0];
  }
  return depth;
}

for (const brokerCase of cases) {
  test(`${brokerCase.name} wrong member types are dead-lettered`, async () => {
    const target = brokerCase.create();
    const ran: unknown[] = [];
    actor(
      (label: string) => {
        ran.push(label);
      },
      { broker: target.broker, actorName: "echo", queueName: target.queueName },
    );
    const { queueName } = target;
    const bad: Record<string, unknown>[] = [
      { args: "not a list" },
      { kwargs: ["not", "a", "dict"] },
      { options: ["not", "a", "dict"] },
      { message_id: 42 },
      { actor_name: 7 },
      { queue_name: null },
      { message_timestamp: "yesterday" },
      { unexpected_member: true },
    ];
    const errors = watchProcessErrors();
    servers.logs.records.length = 0;

    try {
      await target.worker.start();
      for (const members of bad) {
        const { text, redisMessageId } = wireBody(queueName, members);
        await target.push(text, redisMessageId);
      }
      await target.push("[1, 2, 3]");
      await target.push('"just a string"');
      // Options of the wrong type are another matter: they are ignored with a warning and the message runs.
      const wrongOptions = wireBody(queueName, {
        args: ["wrong options"],
        options: { max_retries: "three", time_limit: "soon", max_age: [], redis_message_id: randomUUID() },
      });
      const parsed = JSON.parse(wrongOptions.text) as { options: { redis_message_id: string } };
      await target.push(wrongOptions.text, parsed.options.redis_message_id);
      const last = wireBody(queueName, { args: ["after the bad ones"] });
      await target.push(last.text, last.redisMessageId);

      await waitFor("the valid messages to run", () => ran.length === 2);
      await waitFor("ten dead letters", async () => (await target.deadLettered()) === bad.length + 2);

      assert.deepEqual(ran, ["wrong options", "after the bad ones"]);
      assert.equal(servers.logs.find("error", "Failed to decode").length, bad.length + 2, "one decode error per bad body");
      for (const member of ["args", "kwargs", "options", "message_id", "actor_name", "queue_name", "message_timestamp"]) {
        assert.equal(servers.logs.find("error", `"${member}" must be`).length, 1, `the error names the member ${member}`);
      }
      assert.equal(servers.logs.find("error", 'unknown member "unexpected_member"').length, 1);
      assert.equal(servers.logs.find("warn", 'invalid time_limit option "soon"').length, 1, "the wrong option type is reported");
      assert.equal(servers.logs.find("warn", "invalid max_age option []").length, 1);
    } finally {
      errors.stop();
      await target.stop();
    }
    assert.deepEqual(errors.errors, [], "no unhandled rejection or uncaught exception");
  });

  test(`${brokerCase.name} nesting past 1000 levels is dead-lettered`, async () => {
    const target = brokerCase.create();
    const depths: number[] = [];
    const deep = actor(
      (value: unknown) => {
        depths.push(arrayDepth(value));
      },
      { broker: target.broker, actorName: "echo", queueName: target.queueName },
    );
    servers.logs.records.length = 0;

    try {
      // The body object and the args array are two levels, so 990 more stay within 1000.
      const allowed = 990;
      const tooDeep = 1100;
      await assert.rejects(
        deep.send(JSON.parse(`${"[".repeat(tooDeep)}${"]".repeat(tooDeep)}`)),
        (error: unknown) => error instanceof EncodeError && /nested deeper than 1000 levels/.test(error.message),
        "sending too deep a value fails at once with EncodeError",
      );

      await target.worker.start();
      const nested = (depth: number): string => `[${"[".repeat(depth)}${"]".repeat(depth)}]`;
      const tooDeepBody = wireBody(target.queueName, {});
      await target.push(tooDeepBody.text.replace('"args":[]', `"args":${nested(tooDeep)}`), tooDeepBody.redisMessageId);
      const allowedBody = wireBody(target.queueName, {});
      await target.push(allowedBody.text.replace('"args":[]', `"args":${nested(allowed)}`), allowedBody.redisMessageId);

      await waitFor("the allowed message to run", () => depths.length === 1);
      await waitFor("the deep message to be dead-lettered", async () => (await target.deadLettered()) === 1);

      assert.deepEqual(depths, [allowed]);
      const decodeErrors = servers.logs.find("error", "Failed to decode");
      assert.equal(decodeErrors.length, 1);
      assert.match(decodeErrors[0]!.message, /nested deeper than 1000 levels/);
    } finally {
      await target.stop();
    }
  });

  test(`${brokerCase.name} prototype keys stay plain data`, async () => {
    const target = brokerCase.create();
    const seen: { arg: unknown; kwargs: unknown; options: Record<string, unknown> }[] = [];
    actor(
      function (this: TaskContext, arg: unknown, kwargs: unknown) {
        seen.push({ arg, kwargs, options: this.message.options });
        if (seen.length === 1) {
          // The retry copies the options, which must keep the keys as data.
          throw new Retry("once more", { delay: 10 });
        }
      },
      { broker: target.broker, actorName: "echo", queueName: target.queueName },
    );
    const redisMessageId = randomUUID();
    const text =
      `{"queue_name":"${target.queueName}","actor_name":"echo",` +
      '"args":[{"__proto__":{"polluted":"args"},"constructor":{"prototype":{"polluted":"args"}}}],' +
      '"kwargs":{"__proto__":{"polluted":"kwargs"},"constructor":{"prototype":{"polluted":"kwargs"}}},' +
      `"options":{"__proto__":{"polluted":"options"},"constructor":{"prototype":{"polluted":"options"}},"redis_message_id":"${redisMessageId}"},` +
      `"message_id":"${randomUUID()}","message_timestamp":${Date.now()}}`;

    try {
      await target.worker.start();
      await target.push(text, redisMessageId);
      await waitFor("the message and its retry to run", () => seen.length === 2);
      await waitFor("the retry to be acked", async () => (await target.remaining()) === 0);

      assert.equal(({} as Record<string, unknown>)["polluted"], undefined, "Object.prototype is untouched");
      assert.equal(Object.hasOwn(Object.prototype, "polluted"), false);
      for (const [index, { arg, kwargs, options }] of seen.entries()) {
        for (const [where, value] of [["arg", arg], ["kwargs", kwargs], ["options", options]] as const) {
          assert.equal(Object.getPrototypeOf(value), Object.prototype, `run ${index}: ${where} has the plain prototype`);
          assert.ok(Object.hasOwn(value as object, "__proto__"), `run ${index}: ${where} keeps "__proto__" as an own key`);
          assert.ok(Object.hasOwn(value as object, "constructor"), `run ${index}: ${where} keeps "constructor" as an own key`);
        }
      }
      assert.equal(seen[1]!.options["retries"], 1, "the second run is the retry");
      assert.equal(await target.deadLettered(), 0);
    } finally {
      await target.stop();
    }
  });

  test(`${brokerCase.name} prototype member names as actors`, async () => {
    const target = brokerCase.create();
    const ran: string[] = [];
    for (const actorName of ["toString", "__proto__"]) {
      actor(
        () => {
          ran.push(actorName);
        },
        { broker: target.broker, actorName, queueName: target.queueName },
      );
    }
    const undeclared = ["constructor", "hasOwnProperty", "valueOf"];
    servers.logs.records.length = 0;

    try {
      await target.worker.start();
      for (const actorName of ["toString", "__proto__", ...undeclared]) {
        const { text, redisMessageId } = wireBody(target.queueName, { actor_name: actorName });
        await target.push(text, redisMessageId);
      }

      await waitFor("the declared actors to run", () => ran.length === 2);
      await waitFor("the undeclared ones to be dead-lettered", async () => (await target.deadLettered()) === undeclared.length);

      assert.deepEqual(ran.sort(), ["__proto__", "toString"]);
      for (const actorName of undeclared) {
        assert.equal(servers.logs.find("error", `actor '${actorName}' is not declared`).length, 1, `the error names ${actorName}`);
      }
    } finally {
      await target.stop();
    }
  });

  test(`${brokerCase.name} 20 MB message round-trips`, async () => {
    const target = brokerCase.create();
    const size = 20 * 1024 * 1024;
    const received: { length: number; edges: string }[] = [];
    const big = actor(
      (text: string) => {
        received.push({ length: text.length, edges: `${text.slice(0, 5)}${text.slice(-5)}` });
      },
      { broker: target.broker, actorName: "echo", queueName: target.queueName },
    );

    try {
      await target.worker.start();
      await big.send(`start${"x".repeat(size - 10)}end!!`);
      // NOTE: RabbitMQ 4.x limits messages to 16 MiB by default (max_message_size); there the broker rejects this send with a ConfigurationError.
      await waitFor("the 20 MB message to run", () => received.length === 1, 30_000);
      await waitFor("its ack", async () => (await target.remaining()) === 0);

      assert.deepEqual(received, [{ length: size, edges: "startend!!" }]);
      assert.equal(await target.deadLettered(), 0);
    } finally {
      await target.stop();
    }
  });
}
