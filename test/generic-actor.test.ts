import assert from "node:assert/strict";
import { test } from "node:test";

import { isActor } from "../src/actor.js";
import { setBroker } from "../src/broker.js";
import { StubBroker } from "../src/brokers/stub/index.js";
import { ConfigurationError } from "../src/errors.js";
import { GenericActor } from "../src/generic-actor.js";
import { createStubWorker } from "./helpers/stub.js";

test("declare uses class name and options", async () => {
  const broker = new StubBroker();
  class SendEmail extends GenericActor<[to: string]> {
    static broker = broker;
    static options = { queueName: "emails", maxRetries: 3 };

    perform(to: string): string {
      return `sent to ${to}`;
    }
  }

  const sendEmail = SendEmail.declare();
  const message = await sendEmail.send("a@example.com");

  assert.ok(isActor(sendEmail));
  assert.equal(sendEmail.actorName, "SendEmail");
  assert.equal(sendEmail.queueName, "emails");
  assert.deepEqual(sendEmail.options, { maxRetries: 3 });
  assert.equal(broker.getActor("SendEmail"), sendEmail);
  assert.equal(message.queueName, "emails");
  assert.deepEqual(message.args, ["a@example.com"]);
  assert.equal(sendEmail("b@example.com"), "sent to b@example.com", "calling the actor runs perform directly");
});

test("declare types send from perform", () => {
  const broker = new StubBroker();
  class Resize extends GenericActor<[width: number, height: number]> {
    static options = { broker, actorName: "resize" };

    perform(width: number, height: number): number {
      return width * height;
    }
  }
  const resize = Resize.declare();

  const message = resize.message(3, 4);
  assert.deepEqual(message.args, [3, 4]);
  const area: number = resize(2, 5);
  assert.equal(area, 10);

  // Never called: tsc checks that these calls are rejected.
  const rejectedCalls = (): void => {
    // @ts-expect-error: width must be a number, as perform declares.
    resize.message("3", 4);
    // @ts-expect-error: perform takes two arguments.
    void resize.send(1);
  };
  assert.equal(typeof rejectedCalls, "function");
});

test("perform runs on one shared instance", async () => {
  const fixture = createStubWorker();
  class Counter extends GenericActor<[step: number]> {
    static options = { broker: fixture.broker };
    total = 0;

    async perform(step: number): Promise<number> {
      await Promise.resolve();
      this.total += step;
      return this.total;
    }
  }
  const counter = Counter.declare();

  try {
    await fixture.worker.start();
    await counter.send(2);
    await counter.send(3);
    await fixture.broker.join("default", { timeout: 10_000 });
    await fixture.worker.join();

    assert.equal(await counter(0), 5, "both messages updated the same instance");
  } finally {
    await fixture.stop();
  }
});

test("declare uses global broker by default", () => {
  const broker = new StubBroker();
  setBroker(broker);
  class Ping extends GenericActor {
    perform(): string {
      return "pong";
    }
  }

  const ping = Ping.declare();

  assert.equal(ping.broker, broker);
  assert.equal(broker.getActor("Ping"), ping);
});

test("declare twice returns same actor", () => {
  const broker = new StubBroker();
  class Twice extends GenericActor {
    static broker = broker;
    perform(): void {}
  }

  assert.equal(Twice.declare(), Twice.declare());
  assert.equal(broker.actors.size, 1);
});

test("subclass inherits options and perform", () => {
  const broker = new StubBroker();
  abstract class EmailTask extends GenericActor<[to: string]> {
    static broker = broker;
    static options = { queueName: "emails" };

    perform(to: string): string {
      return `${this.greeting()} ${to}`;
    }

    protected abstract greeting(): string;
  }
  class Welcome extends EmailTask {
    protected greeting(): string {
      return "welcome";
    }
  }

  const welcome = Welcome.declare();

  assert.equal(welcome.actorName, "Welcome");
  assert.equal(welcome.queueName, "emails");
  assert.equal(welcome("a@example.com"), "welcome a@example.com");
  assert.equal(broker.actors.has("EmailTask"), false, "the base class is never declared");
});

test("declare rejects conflicting brokers", () => {
  const one = new StubBroker();
  const other = new StubBroker();
  class Conflict extends GenericActor {
    static broker = one;
    static options = { broker: other };
    perform(): void {}
  }

  assert.throws(() => Conflict.declare(), /static broker and options.broker/);
});

test("declare rejects unknown options", () => {
  const broker = new StubBroker();
  class Typo extends GenericActor {
    static broker = broker;
    static options = { maxRetry: 3 };
    perform(): void {}
  }

  // @ts-expect-error: maxRetry is not an actor option, so the class does not fit declare().
  assert.throws(() => Typo.declare(), ConfigurationError);
  assert.equal(broker.actors.size, 0);
});
