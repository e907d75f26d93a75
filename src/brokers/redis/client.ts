/**
 * ioredis client helpers shared by the Redis broker, the Redis results
 * backend and the Redis rate-limiter backend, so the three create and
 * describe their connections the same way.
 */

import type { Redis, RedisOptions } from "ioredis";

import { loadPeer } from "../../optional-peer.js";

/**
 * Creates a client with the default RESP2-shaped replies, which the reply
 * parsers expect; the typings reject an explicit undefined `replyMapping`.
 * `neededBy` names the component in the install hint when ioredis is missing.
 */
export function createRedisClient(options: RedisOptions, neededBy: string): Redis {
  const { replyMapping: _ignored, ...rest } = options;
  const ioredis = loadPeer<typeof import("ioredis")>("ioredis", neededBy);
  return new ioredis.Redis(rest);
}

/** Returns the address of a client for log lines and errors, without credentials. */
export function describeRedisClient(client: Redis): string {
  const { host, port, path, db } = client.options;
  const address = path !== undefined && path !== null && path !== "" ? `unix://${path}` : `redis://${host ?? "localhost"}:${port ?? 6379}`;
  return `${address}/${db ?? 0}`;
}
