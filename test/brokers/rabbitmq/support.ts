/**
 * Shared pieces of the RabbitMQ broker tests: the server URL, unique queue
 * names, a raw amqplib connection for inspecting queues the way another
 * client would, and bounded waits.
 */

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

import { connect, type Channel, type ChannelModel, type GetMessage } from "amqplib";

/** The shared test server; override with RABBITMQ_URL. */
export const RABBITMQ_URL = process.env["RABBITMQ_URL"] ?? "amqp://guest:guest@127.0.0.1:5672";

/** Returns a queue name no other test uses, e.g. `mq_publish_3f9a1c2b`. */
export function uniqueQueueName(label: string): string {
  return `mq_${label}_${randomBytes(4).toString("hex")}`;
}

/** A plain amqplib connection and channel, independent of the broker under test. */
export interface RawClient {
  readonly model: ChannelModel;
  /** The current channel; replaced by `freshChannel()` after RabbitMQ closed it. */
  channel: Channel;
  /** Opens a new channel, e.g. after a refused declaration closed the last one. */
  freshChannel(): Promise<Channel>;
  /** Reads every ready message of `queueName` with basic.get (no ack), oldest first, up to `limit`. */
  drain(queueName: string, limit?: number): Promise<GetMessage[]>;
  /** Returns the number of ready messages in `queueName`. */
  count(queueName: string): Promise<number>;
  /** Deletes `<q>`, `<q>.DQ` and `<q>.XQ`. */
  deleteQueueSet(queueName: string): Promise<void>;
  close(): Promise<void>;
}

export async function openRawClient(): Promise<RawClient> {
  const model = await connect(RABBITMQ_URL);
  model.on("error", () => {
    // Tests provoke channel errors on purpose; the connection survives them.
  });

  const openChannel = async (): Promise<Channel> => {
    const channel = await model.createChannel();
    channel.on("error", () => {
      // A refused declaration closes the channel; tests assert on the rejected promise.
    });
    return channel;
  };

  const client: RawClient = {
    model,
    channel: await openChannel(),
    async freshChannel() {
      client.channel = await openChannel();
      return client.channel;
    },
    async drain(queueName, limit = 100) {
      const messages: GetMessage[] = [];
      for (let index = 0; index < limit; index++) {
        const message = await client.channel.get(queueName, { noAck: true });
        if (message === false) {
          break;
        }
        messages.push(message);
      }
      return messages;
    },
    async count(queueName) {
      return (await client.channel.checkQueue(queueName)).messageCount;
    },
    async deleteQueueSet(queueName) {
      const channel = await openChannel();
      for (const name of [queueName, `${queueName}.DQ`, `${queueName}.XQ`]) {
        await channel.deleteQueue(name);
      }
      await channel.close();
    },
    async close() {
      await model.close();
    },
  };
  return client;
}

/**
 * Polls `condition` every 20 ms until it returns true, failing with
 * `description` after `timeout` ms.
 */
export async function waitFor(description: string, condition: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeout} ms waiting for: ${description}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A queue as `rabbitmqctl list_queues` shows it: arguments as [name, type, value] triples. */
export interface ListedQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: [string, string, unknown][];
  messages: number;
}

/**
 * Lists queues with their typed arguments through rabbitmqctl, or returns
 * undefined when rabbitmqctl cannot reach the server from this account.
 */
export async function listQueues(): Promise<ListedQueue[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(
      "rabbitmqctl",
      ["list_queues", "name", "durable", "auto_delete", "exclusive", "arguments", "messages", "--formatter", "json", "-q"],
      { timeout: 20_000 },
    );
    return JSON.parse(stdout) as ListedQueue[];
  } catch {
    return undefined;
  }
}

/** Collects unhandled rejections and uncaught exceptions (e.g. an 'error' event without a listener) until `stop()`. */
export function watchProcessErrors(): { readonly errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const record = (error: unknown): void => {
    errors.push(error);
  };
  process.on("unhandledRejection", record);
  process.on("uncaughtException", record);
  return {
    errors,
    stop() {
      process.off("unhandledRejection", record);
      process.off("uncaughtException", record);
    },
  };
}
