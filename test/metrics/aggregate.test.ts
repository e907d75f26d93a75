/**
 * Merging the metrics of several processes: in-process registries whose
 * snapshots go through JSON as over IPC, then real child processes that
 * respond over the IPC channel.
 */

import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { test } from "node:test";

import { actor } from "../../src/actor.js";
import {
  aggregateSnapshots,
  gatherFromWorkerProcesses,
  isMetricsEndpointMessage,
  isMetricsSnapshot,
  METRIC_NAMES,
  Prometheus,
  requestMetrics,
  startExpositionServer,
  type MetricsEndpointMessage,
  type MetricsSnapshot,
} from "../../src/metrics/index.js";
import { captureLogs } from "../helpers/logs.js";
import { createStubWorker } from "../helpers/stub.js";
import { snapshotValue } from "./support.js";

/**
 * Runs `count` messages through a worker with its own middleware and no
 * retries, so the first `failures` are dead-lettered. Returns the snapshot
 * after a JSON round trip, as it would cross the IPC channel.
 */
async function childLikeSnapshot(count: number, failures: number, queueDepth: number): Promise<MetricsSnapshot> {
  const prometheus = new Prometheus({ queueDepth: (queueName) => (queueName === "default" ? queueDepth : undefined) });
  const fixture = createStubWorker({ middleware: [prometheus] });
  let calls = 0;
  const work = actor(
    () => {
      calls += 1;
      if (calls <= failures) {
        throw new Error("fails for good");
      }
    },
    { broker: fixture.broker, actorName: "work" },
  );

  try {
    await fixture.worker.start();
    for (let index = 0; index < count; index += 1) {
      await work.send();
    }
    await fixture.broker.join("default", { timeout: 5000, failFast: false });
    await fixture.worker.join();
    return JSON.parse(JSON.stringify(await prometheus.collectForAggregation())) as MetricsSnapshot;
  } finally {
    await fixture.stop();
  }
}

test("aggregate sums counters of two registries", async () => {
  const logs = captureLogs();

  try {
    const first = await childLikeSnapshot(2, 1, 7);
    const second = await childLikeSnapshot(3, 0, 9);
    assert.ok(isMetricsSnapshot(first));

    const merged = aggregateSnapshots([first, second]);
    const snapshot = (await merged.getMetricsAsJSON()) as unknown as MetricsSnapshot;
    const labels = { queue_name: "default", actor_name: "work" };

    assert.equal(snapshotValue(snapshot, METRIC_NAMES.messages, labels), 5);
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.errors, labels), 1);
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.rejects, labels), 1);
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.durations, labels, `${METRIC_NAMES.durations}_count`), 5);
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.durations, { ...labels, le: "+Inf" }, `${METRIC_NAMES.durations}_bucket`), 5);
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.inProgress, labels), 0);
    // Both processes sample the same queue, so the merge keeps one sample.
    assert.equal(snapshotValue(snapshot, METRIC_NAMES.queueMessages, { queue_name: "default" }), 9);

    const text = await merged.metrics();
    assert.match(text, /^dramatiq_messages_total\{queue_name="default",actor_name="work"\} 5$/m);
  } finally {
    logs.restore();
  }
});

test("isMetricsSnapshot rejects malformed data", () => {
  const valid = { name: "m", help: "h", type: "counter", aggregator: "sum", values: [{ value: 1, labels: {} }] };

  assert.equal(isMetricsSnapshot([valid]), true);
  assert.equal(isMetricsSnapshot([]), true);
  assert.equal(isMetricsSnapshot({}), false);
  assert.equal(isMetricsSnapshot([{ ...valid, aggregator: "median" }]), false);
  assert.equal(isMetricsSnapshot([{ ...valid, values: [{ value: null, labels: {} }] }]), false);
  assert.equal(isMetricsSnapshot([{ ...valid, values: [{ value: 1 }] }]), false);
  assert.equal(isMetricsSnapshot([{ ...valid, name: 3 }]), false);
});

const fixturePath = path.join(import.meta.dirname, "fixtures", "metrics-worker.ts");

interface ForkedWorker {
  readonly child: ChildProcess;
  /** Resolves with the endpoint the child announces; rejects when it exits or stays silent for 20 s. */
  readonly endpoint: Promise<MetricsEndpointMessage>;
}

/** Forks the fixture, which processes `count` messages; a "silent" fixture never responds. */
function forkWorker(count: number, mode: "serve" | "silent" = "serve"): ForkedWorker {
  const child = fork(fixturePath, [String(count), mode], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const endpoint = new Promise<MetricsEndpointMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`The forked worker (PID ${child.pid ?? "unknown"}) announced no metrics endpoint within 20 s.`));
    }, 20_000);
    child.on("message", (message) => {
      if (isMetricsEndpointMessage(message)) {
        clearTimeout(timer);
        resolve(message);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`The forked worker exited with code ${String(code)} before announcing its metrics endpoint.`));
    });
  });
  // The silent fixture never announces; keep its rejection from going unhandled.
  endpoint.catch(() => undefined);
  return { child, endpoint };
}

/** Closes the IPC channel, which stops the fixture, and waits for it to exit (SIGKILL after 10 s). */
async function stopWorker({ child }: ForkedWorker): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }

  const exited = new Promise<void>((resolve) => child.once("exit", () => { resolve(); }));
  if (child.connected) {
    child.disconnect();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

test("gather merges forked worker processes", async () => {
  const logs = captureLogs();
  const workers = [forkWorker(2), forkWorker(3)];

  try {
    const endpoints = await Promise.all(workers.map((worker) => worker.endpoint));
    assert.deepEqual(endpoints[0], { type: "melodramatiq:metrics-endpoint", host: "127.0.0.1", port: 0 });

    const snapshots = await gatherFromWorkerProcesses(workers.map((worker) => worker.child));
    assert.equal(snapshots.length, 2);

    const server = await startExpositionServer({
      host: "127.0.0.1",
      port: 0,
      gather: () => gatherFromWorkerProcesses(workers.map((worker) => worker.child)),
    });
    try {
      const text = await (await fetch(server.url)).text();
      assert.match(text, /^dramatiq_messages_total\{queue_name="default",actor_name="work"\} 5$/m);
      assert.match(text, /^dramatiq_message_duration_milliseconds_count\{queue_name="default",actor_name="work"\} 5$/m);
    } finally {
      await server.close();
    }
  } finally {
    await Promise.all(workers.map(stopWorker));
    logs.restore();
  }
});

test("gather leaves out silent worker process", async () => {
  const logs = captureLogs();
  const responsive = forkWorker(1);
  const silent = forkWorker(1, "silent");

  try {
    await responsive.endpoint;
    const snapshots = await gatherFromWorkerProcesses([responsive.child, silent.child], { timeout: 500 });

    assert.equal(snapshots.length, 1);
    const warnings = logs.find("warn", "Leaving a worker process out");
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]?.fields["err"]), /did not send its metrics within 500 ms/);
  } finally {
    await Promise.all([responsive, silent].map(stopWorker));
    logs.restore();
  }
});

test("requestMetrics rejects for exited worker", async () => {
  const logs = captureLogs();
  const worker = forkWorker(0);

  try {
    await worker.endpoint;
    await stopWorker(worker);

    await assert.rejects(requestMetrics(worker.child, { timeout: 5000 }), /has no IPC channel open/);
  } finally {
    await stopWorker(worker);
    logs.restore();
  }
});
