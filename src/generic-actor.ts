/**
 * Class-based actors, the counterpart of Python Dramatiq's GenericActor: a
 * class with a `perform` method and static options, turned into an actor by
 * `declare()`. Shared behaviour goes in a base class that is never declared.
 */

import { actor, type ActorOptions, type CallableActor } from "./actor.js";
import type { Broker } from "./broker.js";
import { ConfigurationError } from "./errors.js";

/**
 * The static side `declare()` reads: a constructor without arguments, and
 * optionally the actor options and the broker.
 */
export interface GenericActorClass<Instance extends GenericActor> {
  new (): Instance;
  /** The class name, used as the actor name unless `options.actorName` is set. */
  readonly name: string;
  /** Actor options, as `actor()` takes them. @defaultValue `{}` */
  readonly options?: ActorOptions;
  /** Broker to declare the actor on; same as `options.broker`. @defaultValue the global broker (`setBroker`) */
  readonly broker?: Broker;
}

/** Actors declared so far, per class, so that `declare()` can be called from several modules. */
const declaredActors = new WeakMap<GenericActorClass<GenericActor>, CallableActor<GenericActor["perform"]>>();

/**
 * Base class of class-based actors. A subclass implements `perform` and may
 * set `static options` (any `actor()` option) and `static broker`. Calling
 * `declare()` on it creates the actor, whose `send()` takes the parameters
 * of `perform`.
 *
 * `declare()` creates one instance with `new Subclass()` and calls its
 * `perform` for every message, so fields set in the constructor (a client,
 * a cache) are shared by all the messages one process runs. The actor name
 * is the class name unless `options.actorName` is set. Set it when Python
 * code sends to the actor, or when a bundler may rename classes.
 *
 * Why a static `declare()` and not a decorator: standard decorators cannot
 * change the type of the class they decorate, so `send()` could not be typed
 * from `perform`. And why not declare on first use: a worker learns its
 * actors by importing modules, so the declaration must run at import time,
 * which an explicit `declare()` call in the module makes visible.
 *
 * @example
 *   class SendEmail extends GenericActor<[to: string]> {
 *     static options = { queueName: "emails", maxRetries: 3 };
 *     async perform(to: string): Promise<void> {
 *       await mailer.send(to);
 *     }
 *   }
 *   export const sendEmail = SendEmail.declare();
 *   await sendEmail.send("a@example.com");
 */
// Args is used once, on purpose: `extends GenericActor<[to: string]>` states the parameters that `perform` must accept.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export abstract class GenericActor<Args extends unknown[] = unknown[]> {
  /** Runs the task for one message; its parameters type the actor's `send()`. */
  abstract perform(...args: Args): unknown;

  /**
   * Declares the actor of this class on its broker and returns it. A second
   * call on the same class returns the same actor.
   *
   * @throws ConfigurationError when `static broker` and `options.broker`
   *   name different brokers, or for whatever `actor()` rejects (a
   *   duplicate name, an unknown option).
   */
  static declare<Instance extends GenericActor>(this: GenericActorClass<Instance>): CallableActor<Instance["perform"]> {
    const existing = declaredActors.get(this);
    if (existing !== undefined) {
      return existing;
    }

    const options = this.options ?? {};
    const broker = this.broker ?? options.broker;
    if (this.broker !== undefined && options.broker !== undefined && this.broker !== options.broker) {
      throw new ConfigurationError(
        `Class ${this.name} sets both static broker and options.broker to different brokers: keep only one of them.`,
      );
    }

    const instance = new this();
    const perform = (...args: unknown[]): unknown => instance.perform(...args);
    const declared = actor(perform as Instance["perform"], {
      ...options,
      actorName: options.actorName ?? this.name,
      ...(broker === undefined ? {} : { broker }),
    });

    declaredActors.set(this, declared);
    return declared;
  }
}
