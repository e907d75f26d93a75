/**
 * Pipelines: messages that run one after another, each step receiving the
 * previous step's result as its last argument. The whole chain travels in
 * the first message: each step's `pipe_target` option contains the complete
 * wire form of the next step, so a Python worker can continue a pipeline
 * that a TypeScript producer started and the other way round. The worker
 * side is the Pipelines middleware.
 */

import { inspect } from "node:util";

import { getBroker, type Broker } from "../broker.js";
import { ConfigurationError } from "../errors.js";
import { Message, type MessageDict, type MessageOptions } from "../message/message.js";
import { optionChecks } from "../middleware/options.js";
import { findResultReader, hasResult, SharedTimeout, type CompositionResultOptions } from "./results.js";

/** Options of `pipeline()` and `group()`. */
export interface CompositionOptions {
  /** Broker that `run()` enqueues on and whose Results middleware the result methods read. @defaultValue the global broker (`setBroker`), looked up when needed */
  broker?: Broker;
}

/** Options of `Pipeline.run()` and `Group.run()`. */
export interface CompositionRunOptions {
  /** Milliseconds before the first messages become available. */
  delay?: number;
}

/** A message or a pipeline, as `pipeline()` accepts them; pipelines are flattened into their steps. */
export type PipelineChild = Message<readonly unknown[]> | Pipeline;

/**
 * A chain of messages. Build it with `pipeline([...])`, then `run()` it.
 * The messages are copied, keeping their ids and timestamps, so the ids
 * that `getResults()` reads are known before the pipeline runs.
 *
 * @example
 *   const chain = await pipeline([add.message(1, 2), double.message(), notify.messageWithOptions({ pipeIgnore: true })]).run();
 *   const doubled = await chain.getResults({ block: true });
 */
export class Pipeline {
  /** The steps in order, without `pipe_target` options; `messages` adds them. */
  readonly steps: readonly Message[];
  private readonly configuredBroker: Broker | undefined;

  constructor(children: Iterable<PipelineChild>, options: CompositionOptions = {}) {
    const steps: Message[] = [];
    for (const child of children) {
      if (child instanceof Pipeline) {
        steps.push(...child.steps);
      } else if (child instanceof Message) {
        steps.push(cloneMessage(child));
      } else {
        throw new ConfigurationError(
          `pipeline() takes messages and pipelines, not ${describeValue(child)}: build messages with actor.message() or actor.messageWithOptions().`,
        );
      }
    }

    if (steps.length === 0) {
      throw new ConfigurationError("pipeline() needs at least one message.");
    }

    this.steps = steps;
    this.configuredBroker = options.broker;
  }

  /** The broker this pipeline runs on. */
  get broker(): Broker {
    return this.configuredBroker ?? getBroker();
  }

  /** Number of steps. */
  get length(): number {
    return this.steps.length;
  }

  /**
   * The messages as they travel: every step but the last carries the next
   * step's complete wire form in its `pipe_target` option, so the first
   * message contains the whole chain. The first one is what `run()` enqueues.
   */
  get messages(): Message[] {
    const chained: Message[] = [];
    let nextDict: MessageDict | undefined;
    for (let index = this.steps.length - 1; index >= 0; index -= 1) {
      const step = this.steps[index] as Message;
      const options: MessageOptions = nextDict === undefined ? { ...step.options } : { ...step.options, pipe_target: nextDict };
      const message = step.copy({ options });
      chained.unshift(message);
      nextDict = message.toDict();
    }

    return chained;
  }

  /**
   * Enqueues the first message. Its delay is the larger of `options.delay`
   * and its own `delay` option, set with `messageWithOptions({ delay })`.
   * Each later step waits its own `delay` option after the step before it
   * succeeds.
   */
  async run(options: CompositionRunOptions = {}): Promise<this> {
    const first = this.messages[0] as Message;
    const delay = largestDelay(options.delay, first.options["delay"]);
    await this.broker.enqueue(first, delay === undefined ? {} : { delay });
    return this;
  }

  /**
   * Reads the pipeline's result: the last step's.
   *
   * @throws ResultMissingError, ResultTimeoutError or ResultFailureError as `Message.getResult()` does.
   * @throws ConfigurationError when no backend is given and the broker has no Results middleware.
   */
  async getResult(options: CompositionResultOptions = {}): Promise<unknown> {
    const { backend, ...readOptions } = options;
    const reader = findResultReader(() => this.broker, backend);
    return reader.getResult(this.steps[this.steps.length - 1] as Message, readOptions);
  }

  /**
   * Reads every step's result, in order. A blocking read shares one
   * timeout among all steps. Each step stores its result only with
   * `storeResults` on its actor or message.
   *
   * @throws ResultMissingError, ResultTimeoutError or ResultFailureError for the first step whose read fails.
   */
  async getResults(options: CompositionResultOptions = {}): Promise<unknown[]> {
    const { backend, block = false, timeout } = options;
    const reader = findResultReader(() => this.broker, backend);
    const shared = new SharedTimeout(timeout);
    const results: unknown[] = [];
    for (const step of this.steps) {
      results.push(await reader.getResult(step, { block, timeout: shared.remaining() }));
    }

    return results;
  }

  /**
   * Counts the steps, from the first, whose result is stored; the count
   * stops at the first step without one.
   *
   * @throws ResultFailureError when a counted step failed, which also ended the pipeline.
   */
  async completedCount(options: Pick<CompositionResultOptions, "backend"> = {}): Promise<number> {
    const reader = findResultReader(() => this.broker, options.backend);
    let count = 0;
    for (const step of this.steps) {
      if (!(await hasResult(() => reader.getResult(step, {})))) {
        break;
      }
      count += 1;
    }

    return count;
  }

  /**
   * Reports whether the last step's result is stored.
   *
   * @throws ResultFailureError when the last step failed.
   */
  async isCompleted(options: Pick<CompositionResultOptions, "backend"> = {}): Promise<boolean> {
    const reader = findResultReader(() => this.broker, options.backend);
    return hasResult(() => reader.getResult(this.steps[this.steps.length - 1] as Message, {}));
  }

  /** @internal Returns a copy whose last step also carries `options`; groups attach their completion options with it. */
  withLastStepOptions(options: MessageOptions): Pipeline {
    const steps = [...this.steps];
    const last = steps.pop() as Message;
    steps.push(last.copy({ options: { ...last.options, ...options } }));
    return new Pipeline(steps, this.configuredBroker === undefined ? {} : { broker: this.configuredBroker });
  }

  /** @internal Returns a copy on `broker` when this pipeline was built without a broker, else this pipeline. */
  withDefaultBroker(broker: Broker | undefined): Pipeline {
    if (this.configuredBroker !== undefined || broker === undefined) {
      return this;
    }

    return new Pipeline(this.steps, { broker });
  }
}

/**
 * Builds a pipeline from messages and pipelines. Nested pipelines are
 * flattened, so `pipeline([pipeline([a, b]), c])` runs a, b, c.
 *
 * @throws ConfigurationError for an empty list or a child that is neither a message nor a pipeline.
 */
export function pipeline(children: Iterable<PipelineChild>, options: CompositionOptions = {}): Pipeline {
  return new Pipeline(children, options);
}

/** Validates a `delay` run option; shared with groups. */
export function validateRunDelay(delay: unknown): number | undefined {
  if (delay === undefined) {
    return undefined;
  }
  if (!optionChecks.nonNegative(delay)) {
    throw new ConfigurationError(`Invalid delay ${inspect(delay)}: it must be a finite number of milliseconds, 0 or more.`);
  }

  return delay as number;
}

/** Returns the larger of the run delay and the message's own `delay` option, or undefined when neither is set. */
function largestDelay(runDelay: number | undefined, messageDelay: unknown): number | undefined {
  const delays: number[] = [];
  const validRunDelay = validateRunDelay(runDelay);
  if (validRunDelay !== undefined) {
    delays.push(validRunDelay);
  }
  if (optionChecks.nonNegative(messageDelay)) {
    delays.push(messageDelay as number);
  }

  return delays.length === 0 ? undefined : Math.max(...delays);
}

/** Copies a message with a mutable argument list, keeping its id and timestamp. */
export function cloneMessage(message: Message<readonly unknown[]>): Message {
  return new Message({
    queueName: message.queueName,
    actorName: message.actorName,
    args: [...message.args],
    kwargs: { ...message.kwargs },
    options: { ...message.options },
    messageId: message.messageId,
    messageTimestamp: message.messageTimestamp,
  });
}

/** Names a value for an error message. */
export function describeValue(value: unknown): string {
  if (value === null) {
    return "null";
  }
  if (typeof value === "object") {
    const className = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof className === "string" && className !== "" ? `an object of class ${className}` : "an object";
  }

  return `a ${typeof value}`;
}
