/**
 * A small RESP2 client over node:net and node:tls, with the subset of the
 * ioredis API that the Redis broker, the Redis results backend and the
 * Redis rate-limiter backend use. Importing ioredis costs a worker
 * process tens of MiB, because it defines a method for every Redis command.
 *
 * Replies are matched to commands in the order they were written. When a
 * connection closes, the commands written on it are rejected, because the
 * server may or may not have run them, and their replies can never arrive
 * on another connection. Commands issued while disconnected wait in an
 * offline queue for the next connection, for up to `maxRetriesPerRequest`
 * failed reconnection attempts.
 *
 * Events:
 * - `error`: a connection or handshake failure, emitted only while a listener is attached.
 * - `ready`: the server replied to the handshake.
 * - `close`: a connection closed. `reconnecting` follows with the delay in ms, or `end` when no reconnection follows.
 * - `message(channel, payload)`: a pub/sub message.
 */

import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { connect as netConnect, type Socket } from "node:net";

import { CommandQueue, type PendingCommand } from "./command-queue.js";
import { encodeCommand, type CommandArgument } from "./encode.js";
import { RedisConnectionError, ReplyError } from "./errors.js";
import { checkRespClientOptions, describeAddress, type RespClientOptions } from "./options.js";
import { ReplyParser, type Reply } from "./reply-parser.js";
import { settleTransaction, type RespTransaction, type TransactionCommand } from "./transaction.js";

/**
 * Loads node:tls on the first TLS connection. Loading it costs a worker
 * process about 2 MiB of resident memory, which a plain connection does
 * not need.
 */
function loadTls(): typeof import("node:tls") {
  return createRequire(import.meta.url)("node:tls") as typeof import("node:tls");
}

/** Connection states, named as in ioredis. */
export type RespClientStatus = "wait" | "connecting" | "connect" | "ready" | "reconnecting" | "end";

const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_MAX_RETRIES_PER_REQUEST = 20;

function defaultRetryStrategy(attempt: number): number {
  return Math.min(attempt * 50, 2000);
}

export class RespClient extends EventEmitter {
  readonly options: Readonly<RespClientOptions>;
  status: RespClientStatus = "wait";
  /** The socket of the current connection; undefined while disconnected. */
  stream: Socket | undefined;

  private readonly address: string;
  private readonly parser: ReplyParser;
  private readonly inFlight = new CommandQueue();
  private offline: PendingCommand[] = [];
  private readonly channels = new Set<string>();
  /** Whether the server treats the connection as subscribed, so `message` arrays are pushes, not replies. */
  private subscriberMode = false;
  /** Set by quit() and disconnect(): no reconnection follows. */
  private closing = false;
  /** Reconnection attempts since the last ready connection, as passed to `retryStrategy`. */
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  /** The socket error of the current connection attempt, which explains a close better than the close does. */
  private socketError: Error | undefined;
  private connectWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: RespClientOptions = {}) {
    super();
    checkRespClientOptions(options, "RespClient option");
    this.options = { ...options };
    this.address = describeAddress(options);
    this.parser = new ReplyParser({
      onReply: (reply) => {
        this.onReply(reply);
      },
      wantsBuffers: () => !this.subscriberMode && (this.inFlight.peek()?.buffers ?? false),
    });

    if (options.lazyConnect !== true) {
      this.connect().catch(() => {
        // Reported through the 'error' event; commands wait for a reconnection.
      });
    }
  }

  /**
   * Connects, resolving once the server replied to the handshake (AUTH,
   * CLIENT SETNAME and SELECT as configured, else PING). Rejects when this
   * attempt fails.
   */
  connect(): Promise<void> {
    if (this.status === "ready") {
      return Promise.resolve();
    }

    const ready = new Promise<void>((resolve, reject) => {
      this.connectWaiters.push({ resolve, reject });
    });
    if (this.status === "wait" || this.status === "end") {
      this.closing = false;
      this.attempts = 0;
      this.openSocket();
    }
    return ready;
  }

  /**
   * Returns a new client with the same options and `overrides` applied,
   * such as a dedicated subscriber, blocking or transaction connection.
   */
  duplicate(overrides: Partial<RespClientOptions> = {}): RespClient {
    return new RespClient({ ...this.options, ...overrides });
  }

  /** Sends QUIT and resolves once the server replied; disconnects at once when not connected. */
  async quit(): Promise<"OK"> {
    if (this.status !== "ready") {
      this.disconnect();
      return "OK";
    }

    const reply = this.send("QUIT", ["QUIT"], false);
    this.closing = true;
    await reply;
    return "OK";
  }

  /** Closes the connection at once; commands without a reply are rejected and no reconnection follows. */
  disconnect(): void {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;

    const socket = this.stream;
    if (socket !== undefined) {
      this.detachSocket();
      socket.destroy();
      this.rejectInFlight("the client was disconnected");
    }
    this.end(new RedisConnectionError(`Connection to Redis at ${this.address} is closed: disconnect() or quit() was called.`));
  }

  /** Runs `command` and decodes its text replies as UTF-8 strings. */
  call(command: string, args: readonly CommandArgument[] = []): Promise<unknown> {
    return this.send(command, [command, ...args], false);
  }

  /** Runs `command` and keeps its text replies as Buffers, for binary message bodies. */
  callBuffer(command: string, args: readonly CommandArgument[] = []): Promise<unknown> {
    return this.send(command, [command, ...args], true);
  }

  ping(): Promise<string> {
    return this.send("PING", ["PING"], false) as Promise<string>;
  }

  zcard(key: string): Promise<number> {
    return this.send("ZCARD", ["ZCARD", key], false) as Promise<number>;
  }

  hlen(key: string): Promise<number> {
    return this.send("HLEN", ["HLEN", key], false) as Promise<number>;
  }

  zrangebyscore(key: string, min: number | string, max: number | string, ...rest: CommandArgument[]): Promise<string[]> {
    return this.send("ZRANGEBYSCORE", ["ZRANGEBYSCORE", key, min, max, ...rest], false) as Promise<string[]>;
  }

  hgetBuffer(key: string, field: string): Promise<Buffer | null> {
    return this.send("HGET", ["HGET", key, field], true) as Promise<Buffer | null>;
  }

  smembers(key: string): Promise<string[]> {
    return this.send("SMEMBERS", ["SMEMBERS", key], false) as Promise<string[]>;
  }

  zadd(key: string, ...scoresAndMembers: CommandArgument[]): Promise<number> {
    return this.send("ZADD", ["ZADD", key, ...scoresAndMembers], false) as Promise<number>;
  }

  publish(channel: string, message: string): Promise<number> {
    return this.send("PUBLISH", ["PUBLISH", channel, message], false) as Promise<number>;
  }

  get(key: string): Promise<string | null> {
    return this.send("GET", ["GET", key], false) as Promise<string | null>;
  }

  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.send("MGET", ["MGET", ...keys], false) as Promise<(string | null)[]>;
  }

  /** Runs SET with the options given after `value`, such as `"PX", ttl, "NX"`. Resolves with null when NX or XX prevented the write. */
  set(key: string, value: CommandArgument, ...options: CommandArgument[]): Promise<"OK" | null> {
    return this.send("SET", ["SET", key, value, ...options], false) as Promise<"OK" | null>;
  }

  watch(...keys: string[]): Promise<"OK"> {
    return this.send("WATCH", ["WATCH", ...keys], false) as Promise<"OK">;
  }

  unwatch(): Promise<"OK"> {
    return this.send("UNWATCH", ["UNWATCH"], false) as Promise<"OK">;
  }

  lindex(key: string, index: number): Promise<string | null> {
    return this.send("LINDEX", ["LINDEX", key, index], false) as Promise<string | null>;
  }

  rpoplpush(source: string, destination: string): Promise<string | null> {
    return this.send("RPOPLPUSH", ["RPOPLPUSH", source, destination], false) as Promise<string | null>;
  }

  /** Runs BRPOPLPUSH, which blocks the connection for up to `timeout` seconds (0 without limit), so give it a connection of its own. */
  brpoplpush(source: string, destination: string, timeout: number): Promise<string | null> {
    return this.send("BRPOPLPUSH", ["BRPOPLPUSH", source, destination, timeout], false) as Promise<string | null>;
  }

  /**
   * Returns a transaction of `commands` that `exec()` sends as MULTI, the
   * commands and EXEC. `exec()` issues all of them before it returns, so
   * they are adjacent on the connection (or in the offline queue) and no
   * other command of this client can run between MULTI and EXEC.
   */
  multi(commands: readonly TransactionCommand[]): RespTransaction {
    return {
      exec: () => {
        const socket = this.status === "ready" ? this.stream : undefined;
        // Corked, the transaction goes out in one write.
        socket?.cork();
        const replies = [["MULTI"], ...commands, ["EXEC"]].map(([name, ...args]) => this.send(name, [name, ...args], false));
        socket?.uncork();
        return settleTransaction(replies);
      },
    };
  }

  /**
   * Subscribes to `channels`; messages arrive as `message` events. The
   * client subscribes again after each reconnection. Resolves with the
   * number of channels the connection is subscribed to.
   */
  async subscribe(...channels: string[]): Promise<number> {
    for (const channel of channels) {
      this.channels.add(channel);
    }
    const confirmation = await this.send("SUBSCRIBE", ["SUBSCRIBE", ...channels], false, channels.length);
    return subscriptionCount(confirmation);
  }

  /** Unsubscribes from `channels`; resolves with the number of channels still subscribed. */
  async unsubscribe(...channels: string[]): Promise<number> {
    for (const channel of channels) {
      this.channels.delete(channel);
    }
    const confirmation = await this.send("UNSUBSCRIBE", ["UNSUBSCRIBE", ...channels], false, channels.length);
    return subscriptionCount(confirmation);
  }

  /** Writes the command when connected, queues it while (re)connecting, and rejects it once the client is closed. */
  private send(name: string, args: readonly CommandArgument[], buffers: boolean, replies = 1): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const command: PendingCommand = { name, pieces: encodeCommand(args), buffers, repliesLeft: replies, failedAttempts: 0, resolve, reject };

      if (this.closing) {
        reject(new RedisConnectionError(`Failed to run ${name}: the connection to Redis at ${this.address} is closed. Call connect() to open it again.`));
        return;
      }
      if (this.status === "ready") {
        this.write(command);
        return;
      }
      if (this.options.enableOfflineQueue === false) {
        reject(new RedisConnectionError(`Failed to run ${name}: not connected to Redis at ${this.address}, and enableOfflineQueue is false.`));
        return;
      }

      this.offline.push(command);
      if (this.status === "wait" || this.status === "end") {
        this.connect().catch(() => {
          // The queued command is rejected on its own if reconnecting keeps failing.
        });
      }
    });
  }

  private write(command: PendingCommand): void {
    const socket = this.stream;
    if (socket === undefined) {
      command.reject(new RedisConnectionError(`Failed to run ${command.name}: not connected to Redis at ${this.address}.`));
      return;
    }

    this.inFlight.push(command);
    if (command.name === "SUBSCRIBE") {
      this.subscriberMode = true;
    }

    const [only] = command.pieces;
    if (command.pieces.length === 1 && only !== undefined) {
      socket.write(only);
      return;
    }
    // One write for the pieces of one command; nested corks (see scripts.ts) only count up.
    socket.cork();
    for (const piece of command.pieces) {
      socket.write(piece);
    }
    socket.uncork();
  }

  private openSocket(): void {
    const { host = "localhost", port = 6379, path, family, tls } = this.options;
    this.status = "connecting";
    this.socketError = undefined;
    this.parser.reset();

    let socket: Socket;
    if (path !== undefined && path !== null && path !== "") {
      socket = netConnect({ path });
    } else if (tls !== undefined) {
      socket = loadTls().connect({ host, port, ...(family === undefined ? {} : { family }), ...tls });
    } else {
      socket = netConnect({ host, port, ...(family === undefined ? {} : { family }) });
    }
    this.stream = socket;

    const timeout = this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    this.connectTimer = setTimeout(() => {
      socket.destroy(new RedisConnectionError(`Timed out after ${timeout} ms connecting to Redis at ${this.address} (connectTimeout).`));
    }, timeout);

    socket.once(tls !== undefined && (path === undefined || path === null || path === "") ? "secureConnect" : "connect", () => {
      this.onSocketConnected(socket);
    });
    socket.on("data", (chunk: Buffer) => {
      this.onData(socket, chunk);
    });
    socket.on("error", (error: Error) => {
      if (socket === this.stream) {
        this.socketError = error;
        this.emitError(error);
      }
    });
    socket.on("close", () => {
      this.onSocketClose(socket);
    });
  }

  private onSocketConnected(socket: Socket): void {
    if (socket !== this.stream) {
      return;
    }

    const { keepAlive = 0, password, username, connectionName, db = 0 } = this.options;
    socket.setNoDelay(true);
    if (keepAlive > 0) {
      socket.setKeepAlive(true, keepAlive);
    }
    this.status = "connect";

    const steps: Promise<unknown>[] = [];
    if (password !== undefined && password !== "") {
      const user = username !== undefined && username !== "" ? `user '${username}'` : "the default user";
      const auth = username !== undefined && username !== "" ? ["AUTH", username, password] : ["AUTH", password];
      steps.push(this.handshake(auth, `AUTH for ${user}`));
    }
    if (connectionName !== undefined && connectionName !== "") {
      steps.push(this.handshake(["CLIENT", "SETNAME", connectionName], `CLIENT SETNAME ${connectionName}`));
    }
    if (db !== 0) {
      steps.push(this.handshake(["SELECT", db], `SELECT ${db}`));
    }
    if (this.channels.size > 0) {
      steps.push(this.handshake(["SUBSCRIBE", ...this.channels], "SUBSCRIBE", this.channels.size));
    } else {
      // A reply proves that a server, not just a TCP endpoint such as a proxy, is there.
      steps.push(this.handshake(["PING"], "PING"));
    }

    Promise.all(steps).then(
      () => {
        this.onHandshakeDone(socket);
      },
      (error: unknown) => {
        if (socket === this.stream) {
          this.socketError = error as Error;
          this.emitError(error as Error);
          socket.destroy();
        }
      },
    );
  }

  /** Sends one handshake command; an error reply becomes a RedisConnectionError naming the step (never the password). */
  private async handshake(args: CommandArgument[], step: string, replies = 1): Promise<void> {
    const name = String(args[0]);
    const reply = new Promise<Reply>((resolve, reject) => {
      this.write({ name, pieces: encodeCommand(args), buffers: false, repliesLeft: replies, failedAttempts: 0, resolve, reject });
    });
    try {
      await reply;
    } catch (error) {
      if (error instanceof ReplyError) {
        throw new RedisConnectionError(`Redis at ${this.address} rejected ${step}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  private onHandshakeDone(socket: Socket): void {
    if (socket !== this.stream) {
      return;
    }

    clearTimeout(this.connectTimer);
    this.status = "ready";
    this.attempts = 0;

    // Commands queued while offline go out first, in the order they were issued.
    const queued = this.offline;
    this.offline = [];
    for (const command of queued) {
      this.write(command);
    }

    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) {
      waiter.resolve();
    }
    this.emit("ready");
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (socket !== this.stream) {
      return;
    }
    try {
      this.parser.feed(chunk);
    } catch (error) {
      // Replies after a protocol error cannot be matched to commands any more.
      this.socketError = error as Error;
      this.emitError(error as Error);
      socket.destroy();
    }
  }

  private onReply(reply: Reply): void {
    if (this.subscriberMode && isPushMessage(reply)) {
      this.emit("message", String(reply[1]), String(reply[2]));
      return;
    }

    const command = this.inFlight.peek();
    if (command === undefined) {
      throw new RedisConnectionError(`Received a reply from Redis at ${this.address} with no command waiting for it.`);
    }

    if (isSubscriptionConfirmation(reply) && reply[2] === 0) {
      this.subscriberMode = false;
    }
    command.repliesLeft -= 1;
    if (command.repliesLeft > 0) {
      return;
    }

    this.inFlight.shift();
    if (reply instanceof ReplyError) {
      command.reject(reply);
    } else {
      command.resolve(reply);
    }
  }

  private onSocketClose(socket: Socket): void {
    if (socket !== this.stream) {
      return;
    }

    const wasReady = this.status === "ready";
    this.detachSocket();
    this.rejectInFlight("the connection closed");
    this.emit("close");

    if (this.closing) {
      this.end(new RedisConnectionError(`Connection to Redis at ${this.address} is closed: disconnect() or quit() was called.`));
      return;
    }
    if (wasReady && this.socketError === undefined) {
      this.emitError(new RedisConnectionError(`Connection to Redis at ${this.address} was closed by the server or the network.`));
    }

    const failure = this.socketError ?? new RedisConnectionError(`Connection to Redis at ${this.address} closed before it was ready.`);
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) {
      waiter.reject(failure);
    }

    this.scheduleReconnect(wasReady);
  }

  private scheduleReconnect(wasReady: boolean): void {
    this.attempts += 1;
    const delay = (this.options.retryStrategy ?? defaultRetryStrategy)(this.attempts);
    if (typeof delay !== "number") {
      this.end(new RedisConnectionError(`Connection to Redis at ${this.address} is closed: retryStrategy stopped reconnecting after ${this.attempts} attempt(s).`));
      return;
    }

    // The close of a ready connection is not a failed reconnection attempt.
    if (!wasReady) {
      this.failQueuedCommands();
    }

    this.status = "reconnecting";
    this.emit("reconnecting", delay);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.openSocket();
    }, delay);
  }

  /** Counts one failed attempt against each queued command and rejects those that reached `maxRetriesPerRequest`. */
  private failQueuedCommands(): void {
    const limit = this.options.maxRetriesPerRequest === undefined ? DEFAULT_MAX_RETRIES_PER_REQUEST : this.options.maxRetriesPerRequest;
    if (limit === null) {
      return;
    }

    const waiting: PendingCommand[] = [];
    for (const command of this.offline) {
      command.failedAttempts += 1;
      if (command.failedAttempts < limit) {
        waiting.push(command);
        continue;
      }
      const cause = this.socketError === undefined ? "" : ` (last error: ${this.socketError.message})`;
      command.reject(
        new RedisConnectionError(
          `Failed to run ${command.name}: the connection to Redis at ${this.address} is down and ${command.failedAttempts} ` +
            `reconnection attempt(s) failed since the command was issued (maxRetriesPerRequest=${limit})${cause}.`,
        ),
      );
    }
    this.offline = waiting;
  }

  private detachSocket(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.stream = undefined;
    this.subscriberMode = false;
    this.parser.reset();
  }

  private rejectInFlight(reason: string): void {
    for (const command of this.inFlight.takeAll()) {
      command.reject(
        new RedisConnectionError(
          `Failed to run ${command.name}: ${reason} before its reply arrived from Redis at ${this.address}, so the server may or may not have run it.`,
        ),
      );
    }
  }

  private end(error: Error): void {
    if (this.status === "end" && this.offline.length === 0 && this.connectWaiters.length === 0) {
      return;
    }

    this.status = "end";
    const queued = this.offline;
    this.offline = [];
    for (const command of queued) {
      command.reject(new RedisConnectionError(`Failed to run ${command.name}: ${error.message}`));
    }
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) {
      waiter.reject(error);
    }
    this.emit("end");
  }

  /** Emits 'error' only when someone listens, since EventEmitter throws an unheard 'error'. */
  private emitError(error: Error): void {
    if (this.listenerCount("error") > 0) {
      this.emit("error", error);
    }
  }
}

function isPushMessage(reply: Reply): reply is Reply[] {
  return Array.isArray(reply) && reply.length === 3 && reply[0] === "message";
}

function isSubscriptionConfirmation(reply: Reply): reply is Reply[] {
  return Array.isArray(reply) && reply.length === 3 && (reply[0] === "subscribe" || reply[0] === "unsubscribe");
}

function subscriptionCount(confirmation: Reply): number {
  return Array.isArray(confirmation) && typeof confirmation[2] === "number" ? confirmation[2] : 0;
}
