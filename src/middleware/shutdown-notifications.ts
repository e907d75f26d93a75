/**
 * ShutdownNotifications: when a worker starts stopping, its running tasks
 * that set `notifyShutdown` are interrupted with ShutdownError instead of
 * being given the shutdown timeout to finish. Their messages fail and the
 * Retries middleware enqueues them again, so another worker picks them up.
 */

import { inspect } from "node:util";

import type { Actor } from "../actor.js";
import type { Broker } from "../broker.js";
import { ConfigurationError, ShutdownError } from "../errors.js";
import { getLogger } from "../logger.js";
import { InFlightList } from "../worker/in-flight-list.js";
import type { MessageProxy } from "../worker/message-proxy.js";
import type { RunningTask } from "../worker/running-task.js";
import type { Worker } from "../worker/worker.js";
import { Middleware } from "./middleware.js";
import { findActor } from "./options.js";

declare module "../actor.js" {
  interface MiddlewareActorOptions {
    /**
     * ShutdownNotifications: interrupt this actor's calls with ShutdownError
     * (and retry them) as soon as the worker starts stopping.
     * @defaultValue the ShutdownNotifications middleware's `notifyShutdown` (false)
     */
    notifyShutdown?: boolean | null;
  }
}

/** Options of the ShutdownNotifications middleware. */
export interface ShutdownNotificationsOptions {
  /** Default for actors and messages that set no `notifyShutdown`. @defaultValue `false` */
  notifyShutdown?: boolean;
}

/**
 * Interrupts, at worker shutdown, the tasks that asked for it. The setting
 * comes from the message option `notify_shutdown` unless it is absent or
 * null, else from the actor option `notifyShutdown` unless it is absent or
 * null, else from this middleware's `notifyShutdown`.
 *
 * An interrupted task's AbortSignal aborts with the ShutdownError as
 * reason, and the actor should stop when the signal aborts. An actor that
 * ignores it keeps running in the background while the worker moves on, and
 * its outcome is ignored. Tasks without notifications run until they finish or the
 * shutdown timeout passes.
 *
 * @example
 *   const longExport = actor(
 *     async function (this: TaskContext, id: string) {
 *       for (const page of pages(id)) {
 *         this.signal.throwIfAborted();
 *         await exportPage(page);
 *       }
 *     },
 *     { actorName: "long_export", notifyShutdown: true },
 *   );
 */
export class ShutdownNotifications extends Middleware {
  override readonly actorOptions: ReadonlySet<string> = new Set(["notifyShutdown"]);

  readonly notifyShutdown: boolean;
  private readonly logger = getLogger("melodramatiq.middleware.ShutdownNotifications");
  private readonly notified = new InFlightList<RunningTask>();
  private readonly stoppingWorkers = new WeakSet<Worker>();

  constructor(options: ShutdownNotificationsOptions = {}) {
    super();
    const { notifyShutdown = false } = options;
    if (typeof notifyShutdown !== "boolean") {
      throw new ConfigurationError(`Invalid notifyShutdown ${inspect(notifyShutdown)} for the ShutdownNotifications middleware: it must be true or false.`);
    }
    this.notifyShutdown = notifyShutdown;
  }

  override beforeDeclareActor(_broker: Broker, actor: Actor): void {
    const value = actor.options["notifyShutdown"];
    if (value !== undefined && value !== null && typeof value !== "boolean") {
      throw new ConfigurationError(
        `Invalid notifyShutdown ${inspect(value)} for actor ${JSON.stringify(actor.actorName)}: it must be true, false or null.`,
      );
    }
  }

  override aroundActor(broker: Broker, message: MessageProxy, next: () => Promise<unknown>): Promise<unknown> {
    const task = message.task;
    if (task === undefined || !this.shouldNotify(message, findActor(broker, message.actorName))) {
      return next();
    }

    // The task may have been taken from the queue just before the worker
    // began to stop; it is interrupted before its actor starts.
    if (this.stoppingWorkers.has(task.worker)) {
      this.interrupt(task);
      return next();
    }

    return this.watch(task, next);
  }

  private async watch(task: RunningTask, next: () => Promise<unknown>): Promise<unknown> {
    const entry = this.notified.add(task);
    try {
      return await next();
    } finally {
      this.notified.remove(entry);
    }
  }

  override beforeWorkerShutdown(_broker: Broker, worker: Worker): void {
    this.stoppingWorkers.add(worker);
    for (const task of this.notified.removeWhere((candidate) => candidate.worker === worker)) {
      this.interrupt(task);
    }
  }

  private interrupt(task: RunningTask): void {
    const { message } = task;
    const error = new ShutdownError(`The worker is stopping; message '${message.messageId}' of actor '${message.actorName}' was interrupted.`);
    if (task.interrupt(error)) {
      this.logger.info(
        { messageId: message.messageId, actorName: message.actorName },
        `Worker is stopping: interrupting message '${message.messageId}' of actor '${message.actorName}'.`,
      );
    }
  }

  private shouldNotify(message: MessageProxy, actor: Actor | undefined): boolean {
    const fromMessage = message.options["notify_shutdown"];
    if (typeof fromMessage === "boolean") {
      return fromMessage;
    }
    if (fromMessage !== undefined && fromMessage !== null) {
      this.logger.warn(
        { messageId: message.messageId, actorName: message.actorName, option: "notify_shutdown", value: fromMessage },
        `Message '${message.messageId}' has an invalid notify_shutdown option ${inspect(fromMessage)}; ignoring it.`,
      );
    }

    const fromActor = actor?.options["notifyShutdown"];
    if (typeof fromActor === "boolean") {
      return fromActor;
    }
    return this.notifyShutdown;
  }
}
