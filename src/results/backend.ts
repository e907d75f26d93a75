/**
 * The result backend contract: where a message's result lives (the key),
 * how it is encoded, and the read and write operations that each storage
 * (in-memory stub, Redis) implements.
 */

import { createHash } from "node:crypto";

import { ConfigurationError, DecodeError } from "../errors.js";
import { canonicalQueueName } from "../message/queue-names.js";
import { decodeStoredValue, describeError, encodeFailure, encodeResultValue, type FailureDescription } from "./envelope.js";
import { ResultFailureError, ResultMissingError, ResultTimeoutError } from "./errors.js";

/** Options shared by every result backend. */
export interface ResultBackendOptions {
  /** First part of every key source; backends with different namespaces share nothing. @defaultValue `"dramatiq-results"` */
  namespace?: string;
  /**
   * Use the key source `<namespace>:<queue>:<actor>:<message id>` itself as
   * the key instead of its MD5 hex digest. Readers and writers must agree,
   * because the two forms never find each other's results. @defaultValue `false`
   */
  useNamespacePrefixKeys?: boolean;
}

/** The message fields that address a result. A Message and a worker's MessageProxy both have them. */
export interface ResultAddress {
  readonly queueName: string;
  readonly actorName: string;
  readonly messageId: string;
}

/** Options of `ResultBackend.getResult()`. */
export interface GetResultOptions {
  /** Wait for the result instead of failing at once when it is not stored yet. @defaultValue `false` */
  block?: boolean;
  /** Milliseconds a blocking read waits; the Redis backend waits in whole seconds (see RedisBackend). @defaultValue `10000` */
  timeout?: number;
}

/** Milliseconds a blocking read waits when no timeout is given, as in Python Dramatiq. */
export const DEFAULT_RESULT_TIMEOUT = 10_000;

/** Namespace of result keys when none is given, as in Python Dramatiq. */
export const DEFAULT_RESULT_NAMESPACE = "dramatiq-results";

/**
 * Base class of result backends. Subclasses store the encoded text under a
 * key with a TTL and read it back; this class computes the keys, encodes
 * values and failures, and turns what it reads into a value or an error.
 */
export abstract class ResultBackend {
  readonly namespace: string;
  readonly useNamespacePrefixKeys: boolean;

  constructor(options: ResultBackendOptions = {}) {
    const { namespace = DEFAULT_RESULT_NAMESPACE, useNamespacePrefixKeys = false } = options;
    if (typeof namespace !== "string") {
      throw new ConfigurationError(`Invalid result namespace ${String(namespace)}: it must be a string such as "dramatiq-results".`);
    }

    this.namespace = namespace;
    this.useNamespacePrefixKeys = useNamespacePrefixKeys;
  }

  /**
   * Returns the key of a message's result: the lowercase hex MD5 of
   * `<namespace>:<canonical queue>:<actor name>:<message id>`, or that
   * source itself with `useNamespacePrefixKeys`. The queue's `.DQ`/`.XQ`
   * suffix is dropped, so a delayed message has the same key.
   */
  buildMessageKey(message: ResultAddress): string {
    const source = `${this.namespace}:${canonicalQueueName(message.queueName)}:${message.actorName}:${message.messageId}`;
    if (this.useNamespacePrefixKeys) {
      return source;
    }

    return createHash("md5").update(source, "utf8").digest("hex");
  }

  /**
   * Reads a message's result.
   *
   * @throws ResultMissingError when a non-blocking read finds nothing.
   * @throws ResultTimeoutError when a blocking read finds nothing within the timeout.
   * @throws ResultFailureError when the stored result is a failure.
   * @throws DecodeError when the stored text is not JSON (written with another encoder).
   */
  async getResult(message: ResultAddress, options: GetResultOptions = {}): Promise<unknown> {
    const { block = false, timeout = DEFAULT_RESULT_TIMEOUT } = options;
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
      throw new ConfigurationError(`Invalid result timeout ${String(timeout)}: it must be a finite number of milliseconds, 0 or more.`);
    }

    const key = this.buildMessageKey(message);
    const text = block ? await this.waitForText(key, timeout) : await this.readText(key);
    if (text === null && block) {
      throw new ResultTimeoutError(
        `Timed out waiting for the result of ${describe(message)}: nothing was stored within ${this.describeWait(timeout)}.`,
        message.messageId,
      );
    }
    if (text === null) {
      throw new ResultMissingError(
        `No result is stored for ${describe(message)}: it has not finished, does not store results (storeResults), ` +
          "or its result expired. Pass { block: true } to wait for it.",
        message.messageId,
      );
    }

    return this.unwrap(message, key, text);
  }

  private unwrap(message: ResultAddress, key: string, text: string): unknown {
    let outcome;
    try {
      outcome = decodeStoredValue(text);
    } catch (error) {
      throw new DecodeError(
        `Failed to decode the result of ${describe(message)} stored under key '${key}': it is not JSON. ` +
          "Writers must use the JSON encoder (Python's default), not pickle.",
        text,
        { cause: error },
      );
    }

    if (!outcome.ok) {
      throw new ResultFailureError(outcome.failure.type, outcome.failure.msg);
    }
    return outcome.value;
  }

  /**
   * Stores a message's return value for `ttl` ms, replacing any earlier
   * result; `undefined` is stored as `null`. Throws EncodeError for values
   * that JSON cannot carry to Python (Date, Map with object keys, undefined
   * inside arrays…).
   */
  async storeResult(message: ResultAddress, value: unknown, ttl: number): Promise<void> {
    await this.writeText(this.buildMessageKey(message), encodeResultValue(value), validateTtl(ttl));
  }

  /**
   * Stores a failure as a message's result for `ttl` ms, so that readers
   * get a ResultFailureError. Pass the error, or its stored description.
   */
  async storeFailure(message: ResultAddress, failure: Error | FailureDescription, ttl: number): Promise<void> {
    const description = failure instanceof Error ? describeError(failure) : failure;
    await this.writeText(this.buildMessageKey(message), encodeFailure(description), validateTtl(ttl));
  }

  /** Describes how long a blocking read with `timeout` waits, for ResultTimeoutError messages. */
  protected describeWait(timeout: number): string {
    return `the timeout of ${timeout} ms`;
  }

  /** Returns the text stored under `key`, or null when there is none. */
  protected abstract readText(key: string): Promise<string | null>;

  /** Returns the text stored under `key`, waiting up to `timeout` ms for it to appear, or null. */
  protected abstract waitForText(key: string, timeout: number): Promise<string | null>;

  /** Replaces whatever is stored under `key` with `text`, expiring after `ttl` ms (a whole number, at least 1). */
  protected abstract writeText(key: string, text: string, ttl: number): Promise<void>;

  /** Releases connections. A later read or write opens them again. */
  abstract close(): Promise<void>;
}

function validateTtl(ttl: number): number {
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 1) {
    throw new ConfigurationError(`Invalid result TTL ${String(ttl)}: it must be a finite number of milliseconds, 1 or more.`);
  }
  return Math.floor(ttl);
}

function describe(message: ResultAddress): string {
  return `message '${message.messageId}' of actor '${message.actorName}'`;
}
