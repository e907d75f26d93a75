/**
 * Redis client helpers. The broker talks to Redis through the
 * `BrokerRedisClient` surface, which both the built-in RESP2 client and an
 * ioredis client provide. The Redis results backend and rate-limiter
 * backend create ioredis clients with `createRedisClient`.
 */

import type { Redis, RedisOptions } from "ioredis";

import { loadPeer } from "../../optional-peer.js";
import type { CommandArgument } from "./resp/encode.js";
import { describeAddress, type RedisAddress, type RespClientOptions } from "./resp/options.js";
import { RespClient } from "./resp/resp-client.js";

/** The client members the Redis broker, its wake-up channel and its scripts use; ioredis clients have them too. */
export interface BrokerRedisClient {
  readonly status: string;
  readonly options: RedisAddress;
  /** The socket of the current connection, which scripts.ts corks to batch the writes of one tick. */
  readonly stream: { readonly writable: boolean; cork(): void; uncork(): void } | undefined | null;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
  off(event: "ready", listener: () => void): unknown;
  connect(): Promise<void>;
  ping(): Promise<string>;
  quit(): Promise<unknown>;
  disconnect(): void;
  duplicate(): BrokerRedisClient;
  callBuffer(command: string, args: CommandArgument[]): Promise<unknown>;
  zcard(key: string): Promise<number>;
  hlen(key: string): Promise<number>;
  zrangebyscore(key: string, min: number | string, max: number | string, limit: "LIMIT", offset: number, count: number): Promise<string[]>;
  hgetBuffer(key: string, field: string): Promise<Buffer | null>;
  smembers(key: string): Promise<string[]>;
  zadd(key: string, score: string, member: string): Promise<unknown>;
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
}

const FIRST_RECONNECT_DELAY = 100;
const MAX_RECONNECT_DELAY = 3000;

/**
 * Returns the milliseconds to wait before reconnection attempt `attempt`
 * (counted from 1): 100 ms, doubling up to 3 s. The `retryStrategy` of every
 * Redis connection the library opens.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(FIRST_RECONNECT_DELAY * 2 ** Math.min(attempt - 1, 10), MAX_RECONNECT_DELAY);
}

/** Creates the broker's built-in client, which does not load ioredis. */
export function createBrokerClient(options: RespClientOptions): RespClient {
  return new RespClient(options);
}

/**
 * Creates an ioredis client with the default RESP2-shaped replies, which the
 * reply parsers expect; the typings reject an explicit undefined
 * `replyMapping`. `neededBy` names the component in the install hint when
 * ioredis is missing.
 */
export function createRedisClient(options: RedisOptions, neededBy: string): Redis {
  const { replyMapping: _ignored, ...rest } = options;
  const ioredis = loadPeer<typeof import("ioredis")>("ioredis", neededBy);
  return new ioredis.Redis(rest);
}

/** Returns the address of a client for log lines and errors, without credentials. */
export function describeRedisClient(client: { readonly options: RedisAddress }): string {
  return describeAddress(client.options);
}
