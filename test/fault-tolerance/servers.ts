/**
 * Connections to both servers for one fault-tolerance test file: an ioredis
 * admin client, a raw RabbitMQ client and a log capture, opened before the
 * file's tests. After them, the Redis namespaces and RabbitMQ queues that
 * the tests listed are deleted and everything is closed.
 */

import { after, before } from "node:test";

import type { Redis } from "ioredis";

import { openRawClient, type RawClient } from "../brokers/rabbitmq/support.js";
import { adminClient, deleteNamespace } from "../brokers/redis/helpers.js";
import { captureLogs, type LogCapture } from "../helpers/logs.js";

export interface Servers {
  readonly admin: Redis;
  readonly raw: RawClient;
  readonly logs: LogCapture;
  /** Redis namespaces to delete after the file's tests. */
  readonly namespaces: string[];
  /** RabbitMQ queues to delete, with their delay and dead-letter queues, after the file's tests. */
  readonly queues: string[];
}

/** Registers the file's before and after hooks and returns the connections, which exist once `before` has run. */
export function useServers(): Servers {
  let admin: Redis | undefined;
  let raw: RawClient | undefined;
  let logs: LogCapture | undefined;
  const namespaces: string[] = [];
  const queues: string[] = [];
  const opened = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) {
      throw new Error(`The ${name} is opened in before(); use it inside tests only.`);
    }
    return value;
  };

  before(async () => {
    logs = captureLogs();
    admin = adminClient();
    await admin.connect();
    raw = await openRawClient();
  });

  after(async () => {
    for (const namespace of namespaces) {
      await deleteNamespace(opened(admin, "Redis admin client"), namespace);
    }
    for (const queueName of queues) {
      await opened(raw, "RabbitMQ client").deleteQueueSet(queueName);
    }
    await admin?.quit();
    await raw?.close();
    logs?.restore();
  });

  return {
    get admin() {
      return opened(admin, "Redis admin client");
    },
    get raw() {
      return opened(raw, "RabbitMQ client");
    },
    get logs() {
      return opened(logs, "log capture");
    },
    namespaces,
    queues,
  };
}
