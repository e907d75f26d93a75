/** Shared pieces of the pipeline and group tests: vector cases, fixed messages, an enqueue recorder. */

import type { Broker } from "../../src/broker.js";
import { Message, type MessageOptions } from "../../src/message/message.js";
import { Middleware } from "../../src/middleware/middleware.js";
import { loadVector } from "../helpers/vectors.js";

/** One case of messages.json. */
export interface MessageCase {
  name: string;
  encoded: string;
  decoded: { args: unknown[]; options: MessageOptions; message_id: string; message_timestamp: number };
}

const messagesVector = loadVector("messages.json") as {
  fixed_clock_ms: number;
  cases: MessageCase[];
  group_barrier_after_run: { key: string; stub_backend_value: number };
};

/** Timestamp of every message in messages.json. */
export const FIXED_CLOCK = messagesVector.fixed_clock_ms;

/** The barrier that the group cases of messages.json left behind. */
export const groupBarrierAfterRun = messagesVector.group_barrier_after_run;

/** Returns the messages.json case called `name`; throws when there is none. */
export function messageCase(name: string): MessageCase {
  const found = messagesVector.cases.find((entry) => entry.name === name);
  if (found === undefined) {
    throw new Error(`messages.json has no case ${JSON.stringify(name)}`);
  }
  return found;
}

/** Returns the counter-based message id of the vectors: `00000000-0000-4000-8000-0000000000NN` with `counter` in hex. */
export function vectorId(counter: number): string {
  return `00000000-0000-4000-8000-${counter.toString(16).padStart(12, "0")}`;
}

/** Builds a message on queue "default" with a vector id and the vectors' timestamp. */
export function vectorMessage(actorName: string, args: unknown[], counter: number, options: MessageOptions = {}): Message {
  return new Message({ queueName: "default", actorName, args, options, messageId: vectorId(counter), messageTimestamp: FIXED_CLOCK });
}

/** Records every message the broker enqueues, as enqueued (a delayed one on `<q>.DQ` with its eta). */
export class EnqueueRecorder extends Middleware {
  readonly enqueued: Message[] = [];

  override afterEnqueue(_broker: Broker, message: Message): void {
    this.enqueued.push(message);
  }

  /** Returns the enqueued messages with id `messageId`, oldest first. */
  withId(messageId: string): Message[] {
    return this.enqueued.filter((message) => message.messageId === messageId);
  }
}
