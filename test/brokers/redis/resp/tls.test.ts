/**
 * The RedisBroker over TLS (`rediss://`) against a private redis-server
 * that this test starts on a free loopback port with a self-signed
 * certificate made by openssl. The client loads node:tls only for such a
 * connection, so this is the test that runs that path.
 */

import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { actor } from "../../../../src/actor.js";
import { RedisBroker } from "../../../../src/brokers/redis/index.js";
import { Worker } from "../../../../src/worker/worker.js";
import { uniqueNamespace } from "../helpers.js";

let folder: string;
let server: ChildProcess | undefined;
let port: number;
let certificate: Buffer;

/** Returns a loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => { resolve(); }));
  if (address === null || typeof address === "string") {
    throw new Error("The probe server has no TCP address.");
  }
  return address.port;
}

before(async () => {
  folder = mkdtempSync(join(tmpdir(), "melo-redis-tls-"));
  const key = join(folder, "key.pem");
  const cert = join(folder, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], {
    stdio: "ignore",
  });
  certificate = readFileSync(cert);
  port = await freePort();

  const started = spawn(
    "redis-server",
    ["--port", "0", "--tls-port", String(port), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]
      .concat(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  server = started;
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`redis-server did not start with TLS within 10 s:\n${output}`));
    }, 10_000);
    started.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    started.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with code ${String(code)} before it was ready:\n${output}`));
    });
  });
});

after(() => {
  server?.kill("SIGKILL");
  rmSync(folder, { recursive: true, force: true });
});

for (const { name, url, tls } of [
  { name: "with the server's certificate as CA", url: () => `rediss://127.0.0.1:${port}/0`, tls: () => ({ ca: certificate }) },
  { name: "with ssl_cert_reqs=none", url: () => `rediss://127.0.0.1:${port}/0?ssl_cert_reqs=none`, tls: () => undefined },
]) {
  test(`worker runs a task over TLS ${name}`, async () => {
    const ca = tls();
    const broker = new RedisBroker({ url: url(), namespace: uniqueNamespace("tls"), ...(ca === undefined ? {} : { redisOptions: { tls: ca } }) });
    const ran: string[] = [];
    const task = actor(
      (label: string) => {
        ran.push(label);
      },
      { broker, actorName: "tls_task", queueName: "tls_queue" },
    );
    const worker = new Worker(broker, { concurrency: 1 });

    try {
      await task.send("over tls");
      await worker.start();
      await broker.join("tls_queue", { timeout: 10_000 });

      assert.deepEqual(ran, ["over tls"]);
    } finally {
      await worker.stop();
      await broker.close();
    }
  });
}

test("an untrusted certificate fails the connection", async () => {
  const broker = new RedisBroker({ url: `rediss://127.0.0.1:${port}/0`, namespace: uniqueNamespace("tlsbad") });
  try {
    await assert.rejects(broker.connect(), /self[- ]signed certificate/i);
  } finally {
    await broker.close();
  }
});
