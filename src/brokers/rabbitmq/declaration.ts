/**
 * Queue declaration. Each canonical queue `<q>` comes with `<q>.DQ` (delay
 * queue) and `<q>.XQ` (dead letters), declared together with exactly the
 * arguments Python Dramatiq uses, because RabbitMQ refuses a second
 * declaration whose arguments differ (406 PRECONDITION_FAILED):
 *
 * | queue    | arguments                                                                    |
 * | -------- | ---------------------------------------------------------------------------- |
 * | `<q>`    | x-dead-letter-exchange "", x-dead-letter-routing-key "<q>.XQ", x-max-priority* |
 * | `<q>.DQ` | the same as `<q>`                                                            |
 * | `<q>.XQ` | x-message-ttl = dead message TTL                                             |
 *
 * All three are durable, not exclusive and not auto-deleted; x-max-priority
 * is present only when the broker has `maxPriority`.
 */

import type { Channel, ChannelModel, Options } from "amqplib";

import { ConfigurationError } from "../../errors.js";
import { deadLetterQueueName, delayQueueName } from "../../message/queue-names.js";

/** Default TTL of dead letters: 7 days in ms, as in Python Dramatiq. */
export const DEFAULT_DEAD_MESSAGE_TTL = 604_800_000;

/** Environment variable that Python Dramatiq reads the dead letter TTL from (ms). */
export const DEAD_MESSAGE_TTL_VARIABLE = "dramatiq_dead_message_ttl";

/** Settings that decide the declared arguments. */
export interface DeclarationSettings {
  /** x-max-priority of `<q>` and `<q>.DQ`; absent when undefined. */
  readonly maxPriority: number | undefined;
  /** x-message-ttl of `<q>.XQ` in ms. */
  readonly deadMessageTtl: number;
}

/** One queue to declare, with the options amqplib's assertQueue takes. */
export interface QueueDeclaration {
  readonly queueName: string;
  readonly options: Options.AssertQueue;
}

/**
 * Returns the declarations of `<q>`, `<q>.DQ` and `<q>.XQ`, in that order.
 * Integers are typed as AMQP signed 32-bit ints, as pika sends them, so the
 * arguments look identical in `rabbitmqctl list_queues`.
 */
export function queueDeclarations(queueName: string, settings: DeclarationSettings): QueueDeclaration[] {
  const deadLetters = deadLetterQueueName(queueName);
  const mainArguments: Record<string, unknown> = {
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": deadLetters,
  };
  if (settings.maxPriority !== undefined) {
    mainArguments["x-max-priority"] = amqpInteger(settings.maxPriority);
  }

  const common = { durable: true, exclusive: false, autoDelete: false };
  return [
    { queueName, options: { ...common, arguments: mainArguments } },
    { queueName: delayQueueName(queueName), options: { ...common, arguments: { ...mainArguments } } },
    { queueName: deadLetters, options: { ...common, arguments: { "x-message-ttl": amqpInteger(settings.deadMessageTtl) } } },
  ];
}

/** Tags an integer for amqplib's table encoder: `I` (signed 32-bit) when it fits, else `l` (64-bit). */
function amqpInteger(value: number): { "!": "int" | "long"; value: number } {
  return { "!": value <= 0x7fffffff ? "int" : "long", value };
}

/**
 * Reads the dead letter TTL from the environment variable Python Dramatiq
 * uses, so both sides declare the same `x-message-ttl` by default.
 */
export function deadMessageTtlFromEnvironment(): number {
  const text = process.env[DEAD_MESSAGE_TTL_VARIABLE];
  if (text === undefined || text.trim() === "") {
    return DEFAULT_DEAD_MESSAGE_TTL;
  }

  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ConfigurationError(
      `Invalid environment variable ${DEAD_MESSAGE_TTL_VARIABLE}=${JSON.stringify(text)}: it must be a whole number of milliseconds, 0 or more.`,
    );
  }
  return value;
}

/**
 * Declares queue sets once per connection. A new connection declares them
 * again, because the queues may have been deleted while the client was away.
 */
export class QueueDeclarer {
  private readonly byConnection = new WeakMap<ChannelModel, Map<string, Promise<void>>>();
  private readonly done = new WeakMap<ChannelModel, Set<string>>();

  constructor(private readonly settings: DeclarationSettings) {}

  /** Reports whether the queue set of `queueName` is declared on `model`; lets hot paths skip an await. */
  isDeclared(model: ChannelModel, queueName: string): boolean {
    return this.done.get(model)?.has(queueName) === true;
  }

  /**
   * Declares `<q>`, `<q>.DQ` and `<q>.XQ` on `channel` unless already done on
   * its connection `model`. Rejects with a ConfigurationError that names the
   * differing argument when the queues exist with other arguments; RabbitMQ
   * then closes `channel`.
   */
  async declare(model: ChannelModel, channel: Channel, queueName: string): Promise<void> {
    let pending = this.byConnection.get(model);
    if (pending === undefined) {
      pending = new Map();
      this.byConnection.set(model, pending);
    }

    const existing = pending.get(queueName);
    if (existing !== undefined) {
      return existing;
    }

    const declaring = this.declareAll(channel, queueName).then(
      () => {
        let done = this.done.get(model);
        if (done === undefined) {
          done = new Set();
          this.done.set(model, done);
        }
        done.add(queueName);
      },
      (error: unknown) => {
        pending.delete(queueName);
        throw error;
      },
    );
    pending.set(queueName, declaring);
    return declaring;
  }

  /** Forgets that the queue set was declared on `model`, e.g. after RabbitMQ reported it missing. */
  forget(model: ChannelModel, queueName: string): void {
    this.byConnection.get(model)?.delete(queueName);
    this.done.get(model)?.delete(queueName);
  }

  private async declareAll(channel: Channel, queueName: string): Promise<void> {
    for (const declaration of queueDeclarations(queueName, this.settings)) {
      try {
        await channel.assertQueue(declaration.queueName, declaration.options);
      } catch (error) {
        throw explainDeclarationError(error, declaration.queueName, this.settings);
      }
    }
  }
}

/**
 * Converts RabbitMQ's 406 PRECONDITION_FAILED for a queue declaration into
 * a ConfigurationError that names the differing argument and how to align
 * it. Other errors are returned unchanged.
 */
export function explainDeclarationError(error: unknown, queueName: string, settings: DeclarationSettings): unknown {
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== 406) {
    return error;
  }

  const argument = /inequivalent arg '([^']+)'/.exec(error.message)?.[1] ?? "unknown";
  const serverText = /PRECONDITION_FAILED - [^"]*/.exec(error.message)?.[0] ?? error.message;
  return new ConfigurationError(
    `Queue '${queueName}' already exists on RabbitMQ with a different '${argument}' argument (${serverText}). ` +
      `Every process that declares it, Python Dramatiq included, must use the same arguments. ${declarationHint(argument, settings)}`,
    { cause: error },
  );
}

function declarationHint(argument: string, settings: DeclarationSettings): string {
  switch (argument) {
    case "x-max-priority":
      return (
        `This broker declares ${settings.maxPriority === undefined ? "no maxPriority" : `maxPriority ${settings.maxPriority}`}: ` +
        "set maxPriority to the other declarer's max_priority (or leave it out on both), or delete the queues so they are declared again."
      );
    case "x-message-ttl":
      return (
        `This broker declares deadMessageTtl ${settings.deadMessageTtl} ms: set deadMessageTtl, or the environment variable ` +
        `${DEAD_MESSAGE_TTL_VARIABLE}, to the other declarer's value, or delete the dead-letter queue so it is declared again.`
      );
    default:
      return "The queue was declared by a client with other settings: delete it (its messages are lost) or use another queue name.";
  }
}
