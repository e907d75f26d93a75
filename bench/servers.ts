/**
 * The parent's direct access to the servers: their versions for the report,
 * and deleting what a run created (queues, keys). Every run uses fresh names,
 * so deleting them touches nothing else on a shared server.
 */

import { connect } from "amqplib";
import { Redis } from "ioredis";

import { delayQueueName, deadLetterQueueName } from "../src/message/queue-names.js";
import { redactUrl } from "../src/logger.js";

/** Keys deleted per DEL while cleaning up. */
const DELETE_BATCH = 500;
/** SCAN rounds before cleanup gives up; each looks at about 1000 keys. */
const MAX_SCAN_ROUNDS = 100_000;

export async function rabbitmqVersion(url: string): Promise<string> {
  const connection = await openRabbitmq(url);
  try {
    return connection.connection.serverProperties.version ?? "unknown";
  } finally {
    await connection.close();
  }
}

export async function redisVersion(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info("server");
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  } catch (error) {
    throw new Error(`Failed to reach Redis at ${redactUrl(url)}: ${String(error)}. Start it or set REDIS_URL.`, { cause: error });
  } finally {
    client.disconnect();
  }
}

/** Deletes a melodramatiq queue with its delay and dead-letter queues. */
export async function deleteRabbitmqQueues(url: string, queueName: string): Promise<void> {
  const connection = await openRabbitmq(url);
  try {
    const channel = await connection.createChannel();
    for (const name of [queueName, delayQueueName(queueName), deadLetterQueueName(queueName)]) {
      await channel.deleteQueue(name);
    }
  } finally {
    await connection.close();
  }
}

/** Deletes every key that starts with `prefix:`. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    let cursor = "0";
    for (let round = 0; round < MAX_SCAN_ROUNDS; round += 1) {
      const [next, keys] = await client.scan(cursor, "MATCH", `${escapeGlob(prefix)}:*`, "COUNT", 1000);
      for (let start = 0; start < keys.length; start += DELETE_BATCH) {
        await client.del(...keys.slice(start, start + DELETE_BATCH));
      }
      cursor = next;
      if (cursor === "0") {
        return;
      }
    }
  } finally {
    client.disconnect();
  }
}

async function openRabbitmq(url: string): Promise<Awaited<ReturnType<typeof connect>>> {
  try {
    return await connect(url);
  } catch (error) {
    throw new Error(`Failed to reach RabbitMQ at ${redactUrl(url)}: ${String(error)}. Start it or set RABBITMQ_URL.`, { cause: error });
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
