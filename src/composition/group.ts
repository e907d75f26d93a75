/**
 * Groups: messages and pipelines that run in parallel, with optional
 * completion callbacks that run once every child has succeeded. The worker
 * side of the callbacks is the GroupCallbacks middleware.
 */

import { randomUUID } from "node:crypto";

import { getBroker, type Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import { Message, type MessageOptions } from "../message/message.js";
import { GroupCallbacks } from "../middleware/group-callbacks.js";
import { cloneMessage, describeValue, Pipeline, validateRunDelay, type CompositionOptions, type CompositionRunOptions } from "./pipeline.js";
import { findResultReader, hasResult, SharedTimeout, type CompositionResultOptions } from "./results.js";

/** A child of a group. A group inside a group runs, but cannot have completion callbacks of its own. */
export type GroupChild = Message<readonly unknown[]> | Pipeline | Group;

/** Options of `Group.run()`. */
export interface GroupRunOptions extends CompositionRunOptions {
  /**
   * Completion id of this run: the key of its barrier and the
   * `group_completion_uuid` option of its children. Only used when the group
   * has completion callbacks. Reusing an id whose barrier still exists is an
   * error. @defaultValue a new random UUID per run
   */
  completionId?: string;
}

/** Options of `Group.wait()`. */
export type GroupWaitOptions = Pick<CompositionResultOptions, "backend" | "timeout">;

const logger = getLogger("melodramatiq.composition.Group");

/**
 * A set of messages and pipelines enqueued together. Build it with
 * `group([...])`, optionally add completion callbacks, then `run()` it.
 * Messages are copied, keeping their ids, so results can be read through
 * the group.
 *
 * @example
 *   const thumbnails = group([resize.message(a), resize.message(b)], { broker });
 *   thumbnails.addCompletionCallback(notify.message("thumbnails ready"));
 *   await thumbnails.run();
 *   const sizes = await thumbnails.getResults({ block: true });
 */
export class Group {
  readonly children: readonly (Message | Pipeline | Group)[];
  private readonly configuredBroker: Broker | undefined;
  private readonly callbacks: Message[] = [];

  constructor(children: Iterable<GroupChild>, options: CompositionOptions = {}) {
    const copies: (Message | Pipeline | Group)[] = [];
    for (const child of children) {
      if (child instanceof Message) {
        copies.push(cloneMessage(child));
      } else if (child instanceof Pipeline || child instanceof Group) {
        // A child built without a broker runs, and reads its results, on the group's.
        copies.push(child.withDefaultBroker(options.broker));
      } else {
        throw new ConfigurationError(
          `group() takes messages, pipelines and groups, not ${describeValue(child)}: build messages with actor.message() or actor.messageWithOptions().`,
        );
      }
    }

    this.children = copies;
    this.configuredBroker = options.broker;
  }

  /** The broker this group runs on. */
  get broker(): Broker {
    return this.configuredBroker ?? getBroker();
  }

  /** Number of children; a pipeline counts as one. */
  get length(): number {
    return this.children.length;
  }

  /** The completion callbacks added so far. */
  get completionCallbacks(): readonly Message[] {
    return this.callbacks;
  }

  /**
   * Adds a message to enqueue once every child has succeeded. It travels
   * inside each child's options, so its id is fixed now and it is enqueued
   * as is, without a delay. Needs the GroupCallbacks middleware on the
   * broker of the producer and of every worker.
   */
  addCompletionCallback(message: Message<readonly unknown[]>): this {
    if (!(message instanceof Message)) {
      throw new ConfigurationError(`addCompletionCallback() takes a message, not ${describeValue(message)}: build one with actor.message().`);
    }

    this.callbacks.push(cloneMessage(message));
    return this;
  }

  /**
   * Enqueues every child with the same delay; a pipeline child enqueues its
   * first step. With completion callbacks, the barrier is created first, in
   * the backend of the broker's GroupCallbacks middleware, with one party
   * per child and the middleware's barrier TTL.
   *
   * @throws ConfigurationError for an invalid delay, and, with completion
   *   callbacks, when the broker has no GroupCallbacks middleware, the
   *   group is empty or contains a group, or the barrier already exists.
   */
  async run(options: GroupRunOptions = {}): Promise<this> {
    const delay = validateRunDelay(options.delay);
    const children = this.callbacks.length === 0 ? this.children : await this.prepareCompletion(options.completionId);
    for (const child of children) {
      if (child instanceof Message) {
        await this.broker.enqueue(child, delay === undefined ? {} : { delay });
      } else {
        await child.run(delay === undefined ? {} : { delay });
      }
    }

    return this;
  }

  /** Creates the barrier and returns the children stamped with the completion options. */
  private async prepareCompletion(completionIdOption: string | undefined): Promise<(Message | Pipeline)[]> {
    const middleware = this.broker.middleware.find((candidate) => candidate instanceof GroupCallbacks);
    if (middleware === undefined) {
      throw new ConfigurationError(
        "A group with completion callbacks needs the GroupCallbacks middleware on its broker: " +
          "broker.addMiddleware(new GroupCallbacks({ backend })), with the same rate-limiter backend as the workers.",
      );
    }
    if (this.children.length === 0) {
      throw new ConfigurationError("A group with completion callbacks needs at least one child, or the callbacks would never run.");
    }
    if (this.children.some((child) => child instanceof Group)) {
      throw new ConfigurationError("A group with completion callbacks cannot contain a group: flatten the inner group into this one.");
    }

    const completionId = completionIdOption ?? randomUUID();
    if (typeof completionId !== "string" || completionId === "") {
      throw new ConfigurationError(`Invalid completionId ${JSON.stringify(completionId)}: it must be a non-empty string, unique per run.`);
    }

    const created = await middleware.barrierFor(completionId).create(this.children.length);
    if (!created) {
      throw new ConfigurationError(
        `The barrier of group completion id '${completionId}' already exists: give every run its own completionId, or leave it out for a random one.`,
      );
    }
    logger.debug({ groupId: completionId, children: this.children.length }, `Created the barrier of group '${completionId}'.`);

    const completionOptions: MessageOptions = {
      group_completion_uuid: completionId,
      group_completion_callbacks: this.callbacks.map((callback) => callback.toDict()),
    };
    return this.children.map((child) => {
      if (child instanceof Pipeline) {
        return child.withLastStepOptions(completionOptions);
      }

      const message = child as Message;
      return message.copy({ options: { ...message.options, ...completionOptions } });
    });
  }

  /** @internal Returns a copy on `broker` when this group was built without a broker, else this group. */
  withDefaultBroker(broker: Broker | undefined): Group {
    if (this.configuredBroker !== undefined || broker === undefined) {
      return this;
    }

    const copy = new Group(this.children, { broker });
    copy.callbacks.push(...this.callbacks);
    return copy;
  }

  /**
   * Reads every child's result, in order: a message's result, a pipeline's
   * last result, or an inner group's array of results. A blocking read
   * shares one timeout among all children.
   *
   * @throws ResultMissingError, ResultTimeoutError or ResultFailureError for the first child whose read fails.
   */
  async getResults(options: CompositionResultOptions = {}): Promise<unknown[]> {
    const { backend, block = false, timeout } = options;
    const reader = findResultReader(() => this.broker, backend);
    const shared = new SharedTimeout(timeout);
    const results: unknown[] = [];
    for (const child of this.children) {
      const readOptions = { backend: reader, block, timeout: shared.remaining() };
      if (child instanceof Message) {
        results.push(await reader.getResult(child, readOptions));
      } else if (child instanceof Pipeline) {
        results.push(await child.getResult(readOptions));
      } else {
        results.push(await child.getResults(readOptions));
      }
    }

    return results;
  }

  /**
   * Waits until every child has a result, within one shared timeout.
   *
   * @throws ResultTimeoutError when a child has none in time.
   * @throws ResultFailureError when a child failed.
   */
  async wait(options: GroupWaitOptions = {}): Promise<void> {
    await this.getResults({ ...options, block: true });
  }

  /**
   * Counts the children whose result is stored: for a pipeline its last
   * step's, for an inner group all of its children's.
   *
   * @throws ResultFailureError when a child failed.
   */
  async completedCount(options: Pick<CompositionResultOptions, "backend"> = {}): Promise<number> {
    const reader = findResultReader(() => this.broker, options.backend);
    let count = 0;
    for (const child of this.children) {
      if (await this.isChildCompleted(child, reader)) {
        count += 1;
      }
    }

    return count;
  }

  /**
   * Reports whether every child's result is stored.
   *
   * @throws ResultFailureError when a child failed.
   */
  async isCompleted(options: Pick<CompositionResultOptions, "backend"> = {}): Promise<boolean> {
    return (await this.completedCount(options)) === this.children.length;
  }

  private async isChildCompleted(child: Message | Pipeline | Group, reader: NonNullable<CompositionResultOptions["backend"]>): Promise<boolean> {
    if (child instanceof Message) {
      return hasResult(() => reader.getResult(child, {}));
    }

    return child.isCompleted({ backend: reader });
  }
}

/**
 * Builds a group from messages, pipelines and groups.
 *
 * @throws ConfigurationError for a child that is none of these.
 */
export function group(children: Iterable<GroupChild>, options: CompositionOptions = {}): Group {
  return new Group(children, options);
}
