/**
 * A lazily opened, reopenable AMQP connection. It tries the configured URLs
 * in order with a bounded number of attempts and a capped exponential
 * backoff, and keeps at most one open connection. A lost connection is only
 * dropped: the next caller of `connection()` opens a new one, and channels
 * on the old one receive their own 'close' events.
 */

import { setTimeout as sleep } from "node:timers/promises";

import type { ChannelModel } from "amqplib";

import { ConnectionClosedError, ConnectionFailedError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { loadPeer } from "../../optional-peer.js";
import type { AmqpEndpoint } from "./url.js";

/** Options of a ConnectionManager. */
export interface ConnectionManagerOptions {
  /** Role shown in logs and in RabbitMQ's connection list, e.g. "publisher". */
  readonly role: string;
  readonly endpoints: readonly AmqpEndpoint[];
  /** Connection attempts made by `connection()` when the caller gives no number. */
  readonly connectionAttempts: number;
  readonly minReconnectDelay: number;
  readonly maxReconnectDelay: number;
  readonly logger: Logger;
}

/** Milliseconds a close or cancel waits for RabbitMQ's reply before giving up on it. */
export const CLOSE_TIMEOUT = 5000;

export class ConnectionManager {
  private current: ChannelModel | undefined;
  private opening: Promise<ChannelModel> | undefined;
  /** Aborted by `close()`, which cancels backoff sleeps and discards connections still opening. */
  private lifetime = new AbortController();
  /** Whether a connection was lost since the last one opened; recovery is then logged at info. */
  private lost = false;

  constructor(private readonly options: ConnectionManagerOptions) {}

  get connectionAttempts(): number {
    return this.options.connectionAttempts;
  }

  /** The open connection, if any, without connecting. */
  get openConnection(): ChannelModel | undefined {
    return this.current;
  }

  /**
   * Returns the open connection, opening one with up to `attempts` tries
   * over all URLs. Concurrent callers share one attempt. Rejects with
   * ConnectionFailedError when every try failed, and with
   * ConnectionClosedError when `close()` interrupts the tries.
   */
  async connection(attempts = this.options.connectionAttempts): Promise<ChannelModel> {
    if (this.current !== undefined) {
      return this.current;
    }

    if (this.opening === undefined) {
      const opening = this.open(attempts, this.lifetime.signal).finally(() => {
        // close() may have replaced this attempt with a newer one meanwhile.
        if (this.opening === opening) {
          this.opening = undefined;
        }
      });
      this.opening = opening;
    }
    return this.opening;
  }

  /**
   * Closes the connection and interrupts connection attempts in progress.
   * The manager stays usable: the next `connection()` call opens a new one.
   */
  async close(): Promise<void> {
    this.lifetime.abort();
    this.lifetime = new AbortController();
    this.opening = undefined;

    const model = this.current;
    this.current = undefined;
    this.lost = false;
    if (model !== undefined) {
      await closeConnection(model, this.options.logger);
      this.options.logger.debug({ connection: this.options.role }, `Closed the ${this.options.role} connection to RabbitMQ.`);
    }
  }

  private async open(attempts: number, signal: AbortSignal): Promise<ChannelModel> {
    const { endpoints, role, logger } = this.options;
    // amqplib is an optional peer dependency, loaded when the first connection opens.
    const { connect } = loadPeer<typeof import("amqplib")>("amqplib", "RabbitmqBroker");
    let lastError: unknown;

    for (let attempt = 1; attempt <= attempts; attempt++) {
      for (const endpoint of endpoints) {
        throwIfClosed(signal, role);
        try {
          const model = await connect(endpoint.connect, endpoint.socket);
          if (signal.aborted) {
            await closeConnection(model, logger);
            throwIfClosed(signal, role);
          }
          this.adopt(model, endpoint);
          return model;
        } catch (error) {
          if (error instanceof ConnectionClosedError) {
            throw error;
          }
          lastError = error;
        }
      }

      if (attempt < attempts) {
        const delay = reconnectDelay(attempt - 1, this.options.minReconnectDelay, this.options.maxReconnectDelay);
        logger.warn(
          { connection: role, url: describeEndpoints(endpoints), attempt, attempts, err: lastError },
          `Failed to connect to RabbitMQ at ${describeEndpoints(endpoints)} (attempt ${attempt} of ${attempts}): ` +
            `${errorMessage(lastError)}. Retrying in ${delay} ms.`,
        );
        await sleepUnlessClosed(delay, signal, role);
      }
    }

    throw new ConnectionFailedError(
      `Failed to connect to RabbitMQ at ${describeEndpoints(endpoints)} after ${attempts} attempt(s): ${errorMessage(lastError)}`,
      { cause: lastError },
    );
  }

  /** Makes `model` the current connection and watches it for loss. */
  private adopt(model: ChannelModel, endpoint: AmqpEndpoint): void {
    const { role, logger } = this.options;
    const fields = { connection: role, url: endpoint.redactedUrl };

    // amqplib emits 'error' before 'close' when the connection fails; an
    // 'error' event without a listener would crash the process. The error
    // is reported with the loss.
    let failure: Error | undefined;
    model.on("error", (error: Error) => {
      failure = error;
      logger.debug({ ...fields, err: error }, `The ${role} connection to RabbitMQ failed: ${error.message}`);
    });
    model.on("close", () => {
      // After a heartbeat timeout amqplib only half-closes the socket, which
      // then lingers (keeping the process alive) until TCP gives up on a
      // peer that is gone.
      destroySocket(model);
      if (this.current !== model) {
        return;
      }
      this.current = undefined;
      this.lost = true;
      const reason = failure === undefined ? "closed without an error" : failure.message;
      logger.warn(
        { ...fields, err: failure },
        `Lost the ${role} connection to RabbitMQ at ${endpoint.redactedUrl} (${reason}); it is reopened when next needed.`,
      );
    });
    model.on("blocked", (reason: string) => {
      logger.warn({ ...fields, reason }, `RabbitMQ blocked the ${role} connection (${reason}); publishing waits until it is unblocked.`);
    });
    model.on("unblocked", () => {
      logger.info(fields, `RabbitMQ unblocked the ${role} connection.`);
    });

    this.current = model;
    if (this.lost) {
      this.lost = false;
      logger.info(fields, `Reconnected the ${role} connection to RabbitMQ at ${endpoint.redactedUrl}.`);
    } else {
      logger.debug(fields, `Opened the ${role} connection to RabbitMQ at ${endpoint.redactedUrl}.`);
    }
  }
}

/**
 * Returns the delay before reconnect attempt `attempt + 1`, in ms: doubling
 * from `min`, at most `max`, with up to 25% jitter so that many clients
 * losing one server do not all come back at the same moment.
 */
export function reconnectDelay(attempt: number, min: number, max: number): number {
  const base = min * 2 ** Math.min(attempt, 30);
  return Math.round(Math.min(max, base * (1 + Math.random() * 0.25)));
}

/**
 * Waits `delay` ms. Rejects with ConnectionClosedError when `signal` is
 * aborted first, naming `role` (the connection or consumer being waited for).
 */
export async function sleepUnlessClosed(delay: number, signal: AbortSignal, role: string): Promise<void> {
  try {
    await sleep(delay, undefined, { signal });
  } catch {
    throwIfClosed(signal, role);
  }
}

function throwIfClosed(signal: AbortSignal, role: string): void {
  if (signal.aborted) {
    throw new ConnectionClosedError(`The ${role} was closed while waiting to connect to RabbitMQ.`);
  }
}

/**
 * Closes a connection, resolving once it is closed or after CLOSE_TIMEOUT.
 * amqplib's close() waits for the server's close-ok, which never comes on a
 * dead socket, so the 'close' event and the timeout also end the wait.
 */
async function closeConnection(model: ChannelModel, logger: Logger): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    model.once("close", () => {
      resolve();
    });
    model.close().then(resolve, () => {
      // Already closed: the connection failed before or during the call.
      resolve();
    });
  });

  if (!(await settlesWithin(closed, CLOSE_TIMEOUT))) {
    logger.warn({}, `RabbitMQ did not confirm closing a connection within ${CLOSE_TIMEOUT} ms; dropping its socket.`);
    destroySocket(model);
  }
}

/**
 * Waits for `task` at most `timeout` ms and reports whether it settled in
 * time. A round trip on a connection whose peer vanished ends only when the
 * heartbeat detects the loss, which can take minutes, so shutdown steps
 * bound their wait with this.
 */
export async function settlesWithin(task: Promise<unknown>, timeout: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, timeout);
  });
  const settled = task.then(
    () => true as const,
    () => true as const,
  );

  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Destroys the socket under a closed or stuck connection, so it cannot keep the process alive. */
function destroySocket(model: ChannelModel): void {
  // NOTE: `connection.stream` is amqplib's internal socket (2.x) and is not
  // in its type declarations. If a later version drops it, the socket closes
  // only when the server or the heartbeat ends it.
  const stream = (model.connection as unknown as { stream?: { destroy?: () => void } }).stream;
  stream?.destroy?.();
}

function describeEndpoints(endpoints: readonly AmqpEndpoint[]): string {
  return endpoints.map((endpoint) => endpoint.redactedUrl).join(";");
}

/** Returns the message of an error from amqplib or the socket, for log lines and wrapped errors. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
