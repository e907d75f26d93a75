/**
 * Connection cuts while one process produces and consumes, on both
 * brokers. The process runs with `--unhandled-rejections=strict`, so an
 * unhandled rejection or an 'error' event without a listener would end it
 * with a non-zero code. A loopback proxy between it and the server cuts
 * every connection once, then refuses connections for 1.5 s.
 */

import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";

import { actor } from "../../src/actor.js";
import type { Broker } from "../../src/broker.js";
import { RabbitmqBroker } from "../../src/brokers/rabbitmq/index.js";
import { RedisBroker } from "../../src/brokers/redis/index.js";
import type { TaskContext } from "../../src/worker/context.js";
import { Worker } from "../../src/worker/worker.js";
import { RABBITMQ_URL } from "../brokers/rabbitmq/support.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";
import { useServers } from "./servers.js";
import { sleep, spawnFixture, uniqueName, waitFor, type ChildEvent } from "./support.js";

const servers = useServers();

interface CutCase {
  readonly name: string;
  readonly port: number;
  /** Returns the child's environment (without FT_URL) and a direct broker on the same queue. */
  setup(): { env: Record<string, string>; queueName: string; url: (proxy: TcpProxy) => string; direct: () => Broker };
}

const cases: CutCase[] = [
  {
    name: "Redis",
    port: 6379,
    setup() {
      const namespace = uniqueName("cut");
      servers.namespaces.push(namespace);
      return {
        env: { FT_BROKER: "redis", FT_NAMESPACE: namespace, FT_QUEUE: "ft_cut" },
        queueName: "ft_cut",
        url: (proxy) => `redis://127.0.0.1:${proxy.port}/0`,
        direct: () => new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace }),
      };
    },
  },
  {
    name: "RabbitMQ",
    port: 5672,
    setup() {
      const queueName = uniqueName("cut");
      servers.queues.push(queueName);
      return {
        env: { FT_BROKER: "rabbitmq", FT_QUEUE: queueName },
        queueName,
        url: (proxy) => proxy.urlFor(RABBITMQ_URL),
        direct: () => new RabbitmqBroker({ url: RABBITMQ_URL }),
      };
    },
  },
];

function countBy(events: readonly ChildEvent[], type: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const event of events) {
    if (event.event === type) {
      const id = String(event["messageId"]);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Runs the messages the child left in the queue on a direct broker and
 * returns their ids. A Redis fetch whose reply the cut lost leaves its
 * messages in the child's acks set until the child's consumer closes and
 * returns them to the queue.
 */
async function runLeftovers(broker: Broker, queueName: string): Promise<string[]> {
  const ran: string[] = [];
  actor(
    function (this: TaskContext) {
      ran.push(this.message.messageId);
    },
    { broker, actorName: "counted", queueName, maxRetries: 0 },
  );
  const worker = new Worker(broker, { concurrency: 4, shutdownTimeout: 5000 });
  try {
    await worker.start();
    await broker.join(queueName, { timeout: 10_000 });
    await worker.join();
  } finally {
    await worker.stop();
    await broker.close();
  }
  return ran;
}

async function runCutScenario(t: TestContext, cutCase: CutCase): Promise<void> {
  const { env, queueName, url, direct } = cutCase.setup();
  const proxy = await TcpProxy.start({ host: "127.0.0.1", port: cutCase.port });
  const child = spawnFixture("cut-scenario.ts", { env: { ...env, FT_URL: url(proxy) }, nodeOptions: ["--unhandled-rejections=strict"] });
  const ranCount = (): number => child.events.filter((event) => event.event === "ran").length;
  const sentIds = (): string[] => child.events.filter((event) => event.event === "sent").map((event) => String(event["messageId"]));

  try {
    await child.waitForEvent("the child to be ready", (event) => event.event === "ready");
    await waitFor("20 calls before the first cut", () => ranCount() >= 20);

    proxy.cut();
    const afterCut = ranCount();
    await waitFor("calls to resume after the cut", () => ranCount() >= afterCut + 20, 15_000);

    proxy.pause();
    proxy.cut();
    await sleep(1500);
    proxy.resume();
    const afterOutage = ranCount();
    await waitFor("calls to resume after the outage", () => ranCount() >= afterOutage + 20, 15_000);

    child.process.stdin.write("stop\n");
    await child.waitForEvent("the sends to stop", (event) => event.event === "stopped");
    await waitFor("every resolved send to run in the child", () => {
      const ran = countBy(child.events, "ran");
      return sentIds().every((id) => ran.has(id));
    }, 10_000).catch(() => undefined);
    child.process.stdin.end();
    const exit = await child.waitForExit();

    assert.deepEqual(exit, { code: 0, signal: null }, `the child exited cleanly:\n${child.stderr()}`);
    assert.doesNotMatch(child.stderr(), /unhandled|ERR_UNHANDLED_REJECTION/i);
  } finally {
    child.kill();
    await proxy.close();
  }

  const rejected = child.events.filter((event) => event.event === "rejected");
  assert.ok(rejected.length >= 1, "sends during the outage were rejected");
  for (const event of rejected) {
    assert.equal(event["typed"], true, `rejection of send ${String(event["index"])} is a BrokerConnectionError: ${String(event["name"])}: ${String(event["message"])}`);
  }

  const runs = countBy(child.events, "ran");
  const acks = countBy(child.events, "acked");
  for (const [messageId, count] of acks) {
    assert.ok(count <= (runs.get(messageId) ?? 0), `message ${messageId} was acked ${count} time(s) but ran ${runs.get(messageId) ?? 0} time(s)`);
  }
  assert.doesNotMatch(child.stderr(), /unknown delivery tag|PRECONDITION_FAILED/, "no ack reached a channel that did not deliver the message");

  const leftovers = await runLeftovers(direct(), queueName);
  t.diagnostic(`${sentIds().length} resolved sends, ${rejected.length} rejected, ${leftovers.length} run after the child closed`);
  const everRan = new Set([...runs.keys(), ...leftovers]);
  const lost = sentIds().filter((id) => !everRan.has(id));
  assert.deepEqual(lost, [], "every resolved send ran");
}

for (const cutCase of cases) {
  test(`${cutCase.name} cut while producing and consuming`, async (t) => {
    await runCutScenario(t, cutCase);
  });
}
