/**
 * Messages: the unit of work sent to a queue, and their wire form. The wire
 * form is the seven-member JSON object that Python Dramatiq reads and writes
 * (`queue_name`, `actor_name`, `args`, `kwargs`, `options`, `message_id`,
 * `message_timestamp`), encoded as compact, ASCII-only JSON.
 */

import { randomUUID } from "node:crypto";

import { ConfigurationError, DecodeError } from "../errors.js";
import { decodeJson, encodeJson } from "./encoding.js";

/** Message options as they travel: snake_case keys such as `max_retries` or `eta`. */
export type MessageOptions = Record<string, unknown>;

/** The wire form of a message, member for member. */
export interface MessageDict {
  queue_name: string;
  actor_name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: MessageOptions;
  message_id: string;
  message_timestamp: number;
}

/** Fields accepted by the Message constructor; the id and timestamp are generated when absent. */
export interface MessageInit<Args extends readonly unknown[] = unknown[]> {
  queueName: string;
  actorName: string;
  args: Args;
  kwargs?: Record<string, unknown>;
  options?: MessageOptions;
  messageId?: string;
  messageTimestamp?: number;
}

/** Reads results for `Message.getResult()`; every result backend of melodramatiq/results is one. */
export interface ResultReader {
  getResult(
    message: { readonly queueName: string; readonly actorName: string; readonly messageId: string },
    options: { block?: boolean; timeout?: number },
  ): Promise<unknown>;
}

/** Options of `Message.getResult()`. */
export interface MessageResultOptions {
  /** Backend to read from. @defaultValue the backend of the Results middleware on the broker that enqueued the message, else on the global broker */
  backend?: ResultReader;
  /** Wait for the result instead of failing at once when it is not stored yet. @defaultValue `false` */
  block?: boolean;
  /** Milliseconds a blocking read waits (the Redis backend rounds down to whole seconds). @defaultValue `10000` */
  timeout?: number;
}

/** Finds the default result backend of a message; the results module installs it, because importing it here would be a cycle. */
export type DefaultResultReaderLookup = (message: Message<readonly unknown[]>) => ResultReader;

let defaultResultReader: DefaultResultReaderLookup | undefined;

/** @internal Installs the lookup of the default result backend. Called by the Results middleware's constructor. */
export function setDefaultResultReader(lookup: DefaultResultReaderLookup): void {
  defaultResultReader = lookup;
}

const requiredMembers = ["queue_name", "actor_name", "args", "kwargs", "options"] as const;
const knownMembers = new Set<string>([...requiredMembers, "message_id", "message_timestamp"]);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A message for one actor. The id and timestamp are fixed when the message is
 * built and never change: retries and delay releases keep them, so age limits
 * count from the first build.
 */
export class Message<Args extends readonly unknown[] = unknown[]> {
  readonly queueName: string;
  readonly actorName: string;
  readonly args: Args;
  readonly kwargs: Record<string, unknown>;
  /** Options on the wire; middleware and brokers add keys such as `retries` or `eta`. */
  readonly options: MessageOptions;
  readonly messageId: string;
  /** Creation time in UNIX milliseconds. */
  readonly messageTimestamp: number;

  constructor(init: MessageInit<Args>) {
    this.queueName = init.queueName;
    this.actorName = init.actorName;
    this.args = init.args;
    this.kwargs = init.kwargs ?? {};
    this.options = init.options ?? {};
    this.messageId = init.messageId ?? randomUUID();
    this.messageTimestamp = init.messageTimestamp ?? Date.now();
  }

  /**
   * Decodes a message from its wire bytes. Throws a DecodeError that names
   * the problem for bytes that are not UTF-8, not JSON, not an object, lack
   * a required member, carry an unknown member or a member of the wrong type.
   */
  static decode(data: Uint8Array | string): Message {
    let text: string;
    try {
      text = typeof data === "string" ? data : utf8.decode(data);
    } catch (error) {
      throw new DecodeError("Failed to decode message: the body is not valid UTF-8.", data, { cause: error });
    }

    let value: unknown;
    try {
      value = decodeJson(text);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new DecodeError(`Failed to decode message: the body is not valid JSON (${reason}).`, data, { cause: error });
    }

    return Message.fromDict(value, data);
  }

  /**
   * Builds a message from its wire form, checking members and types.
   * `data` is kept on a DecodeError for diagnostics.
   */
  static fromDict(value: unknown, data: Uint8Array | string = ""): Message {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new DecodeError("Failed to decode message: the body must be a JSON object.", data);
    }

    const dict = value as Record<string, unknown>;
    for (const member of requiredMembers) {
      if (!Object.hasOwn(dict, member)) {
        throw new DecodeError(`Failed to decode message: the member ${JSON.stringify(member)} is missing.`, data);
      }
    }

    for (const member of Object.keys(dict)) {
      if (!knownMembers.has(member)) {
        throw new DecodeError(`Failed to decode message: unknown member ${JSON.stringify(member)}.`, data);
      }
    }

    const { queue_name, actor_name, args, kwargs, options, message_id, message_timestamp } = dict;
    const fail = (member: string, expected: string): never => {
      throw new DecodeError(`Failed to decode message: ${JSON.stringify(member)} must be ${expected}.`, data);
    };

    if (typeof queue_name !== "string") fail("queue_name", "a string");
    if (typeof actor_name !== "string") fail("actor_name", "a string");
    if (!Array.isArray(args)) fail("args", "an array");
    if (!isPlainRecord(kwargs)) fail("kwargs", "an object");
    if (!isPlainRecord(options)) fail("options", "an object");
    if (message_id !== undefined && typeof message_id !== "string") fail("message_id", "a string");
    if (message_timestamp !== undefined && !isTimestamp(message_timestamp)) fail("message_timestamp", "a number");

    return new Message({
      queueName: queue_name as string,
      actorName: actor_name as string,
      args: args as unknown[],
      kwargs: kwargs as Record<string, unknown>,
      options: options as MessageOptions,
      ...(message_id === undefined ? {} : { messageId: message_id as string }),
      ...(message_timestamp === undefined ? {} : { messageTimestamp: Number(message_timestamp) }),
    });
  }

  /** Returns the wire form, with members in Python Dramatiq's order. */
  toDict(): MessageDict {
    return {
      queue_name: this.queueName,
      actor_name: this.actorName,
      args: this.args as unknown as unknown[],
      kwargs: this.kwargs,
      options: this.options,
      message_id: this.messageId,
      message_timestamp: this.messageTimestamp,
    };
  }

  /** Encodes the message as Python Dramatiq would: compact, ASCII-only JSON in UTF-8. */
  encode(): Buffer {
    return Buffer.from(encodeJson(this.toDict()), "latin1");
  }

  /**
   * Returns a copy with some fields replaced. The options object is copied,
   * so the copy can be changed without touching this message.
   */
  copy(changes: Partial<MessageInit<Args>> = {}): Message<Args> {
    return new Message<Args>({
      queueName: changes.queueName ?? this.queueName,
      actorName: changes.actorName ?? this.actorName,
      args: changes.args ?? this.args,
      kwargs: changes.kwargs ?? this.kwargs,
      options: changes.options ?? { ...this.options },
      messageId: changes.messageId ?? this.messageId,
      messageTimestamp: changes.messageTimestamp ?? this.messageTimestamp,
    });
  }

  /**
   * Reads this message's result once a worker has stored it, which needs
   * the Results middleware (melodramatiq/results) and `storeResults`.
   *
   * @throws ResultMissingError when a non-blocking read finds nothing.
   * @throws ResultTimeoutError when a blocking read finds nothing within the timeout.
   * @throws ResultFailureError when the message failed for good.
   * @throws ConfigurationError when no backend is given and none can be found.
   * @example
   *   const message = await add.sendWithOptions({ args: [1, 2], storeResults: true });
   *   const sum = await message.getResult({ block: true, timeout: 5000 });
   */
  async getResult(options: MessageResultOptions = {}): Promise<unknown> {
    const { backend, ...readOptions } = options;
    if (backend !== undefined) {
      return backend.getResult(this, readOptions);
    }

    if (defaultResultReader === undefined) {
      throw new ConfigurationError(
        `Message '${this.messageId}' cannot read its result: no Results middleware exists. ` +
          'Add one to the broker (import { Results } from "melodramatiq/results") or pass { backend }.',
      );
    }
    return defaultResultReader(this).getResult(this, readOptions);
  }

  /** Renders the call for log lines, e.g. `send_email('a@example.com', subject='Hi')`. */
  toString(): string {
    const parts = this.args.map((arg) => renderValue(arg));
    for (const [key, value] of Object.entries(this.kwargs)) {
      parts.push(`${key}=${renderValue(value)}`);
    }

    const text = `${this.actorName}(${parts.join(", ")})`;
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  }
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isTimestamp(value: unknown): boolean {
  return (typeof value === "number" && Number.isFinite(value)) || typeof value === "bigint";
}

function renderValue(value: unknown): string {
  if (typeof value === "string") {
    return `'${value}'`;
  }

  try {
    return encodeJson(value);
  } catch {
    return String(value);
  }
}
