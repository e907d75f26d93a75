/** Options of the built-in Redis client, a subset of ioredis's with the same names and meanings. */

import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";

import { ConfigurationError } from "../../../errors.js";

/** Options of RespClient. Each has the name and meaning of the ioredis option of the same name. */
export interface RespClientOptions {
  /** @defaultValue `"localhost"` */
  host?: string;
  /** @defaultValue 6379 */
  port?: number;
  /** A unix socket path; when set, `host` and `port` are not used. */
  path?: string | null;
  /** IP version for `host`: 4, 6, or 0 for either. */
  family?: number;
  /** ACL user name sent with AUTH (Redis 6 and later). */
  username?: string;
  /** Password sent with AUTH when set. */
  password?: string;
  /** Database selected with SELECT after connecting. @defaultValue 0 */
  db?: number;
  /** Name set with CLIENT SETNAME after connecting, shown by CLIENT LIST. */
  connectionName?: string;
  /** Node TLS options; any object turns TLS on. */
  tls?: TlsConnectionOptions;
  /** Milliseconds a connection attempt may take, TLS handshake included. @defaultValue 10000 */
  connectTimeout?: number;
  /** TCP keep-alive initial delay in milliseconds; 0 turns keep-alive off. @defaultValue 0 */
  keepAlive?: number;
  /** Whether `new RespClient()` waits for `connect()` or the first command before connecting. @defaultValue false */
  lazyConnect?: boolean;
  /**
   * Returns the milliseconds to wait before reconnection attempt `attempt`
   * (counted from 1 since the last ready connection), or null or undefined
   * to stop reconnecting. @defaultValue `min(attempt * 50, 2000)`
   */
  retryStrategy?: (attempt: number) => number | null | undefined | void;
  /**
   * Failed reconnection attempts that a command waiting for the connection
   * survives before it is rejected; null waits forever. Commands sent
   * before the connection broke are rejected at once instead, because the
   * server may have run them. @defaultValue 20
   */
  maxRetriesPerRequest?: number | null;
  /** Whether commands issued while disconnected wait for the connection (true) or are rejected at once. @defaultValue true */
  enableOfflineQueue?: boolean;
  /**
   * Only `false` is supported, which is what the client always does: a
   * command written on a connection that closed is rejected, never sent
   * again. It is accepted so that options written for ioredis can keep it. @defaultValue false
   */
  autoResendUnfulfilledCommands?: boolean;
}

/** The option names RespClient reads; `readonly` so the list can be checked against the interface. */
const SUPPORTED_OPTIONS: readonly (keyof RespClientOptions)[] = [
  "host",
  "port",
  "path",
  "family",
  "username",
  "password",
  "db",
  "connectionName",
  "tls",
  "connectTimeout",
  "keepAlive",
  "lazyConnect",
  "retryStrategy",
  "maxRetriesPerRequest",
  "enableOfflineQueue",
  "autoResendUnfulfilledCommands",
];

/**
 * Throws a ConfigurationError naming the first option in `options` that
 * the built-in client does not support (Sentinel, Cluster, custom
 * connectors and other ioredis features). `owner` names where the options
 * came from, as in "RedisBroker option redisOptions".
 */
export function checkRespClientOptions(options: object, owner: string): void {
  for (const name of Object.keys(options)) {
    if (!(SUPPORTED_OPTIONS as readonly string[]).includes(name)) {
      throw new ConfigurationError(
        `Unsupported ${owner}.${name}: the built-in Redis client only reads ${SUPPORTED_OPTIONS.join(", ")}. ` +
          "For other ioredis features, create an ioredis client yourself (new Redis({...})) and pass it as `client` instead.",
      );
    }
  }

  const { port, db, connectTimeout, maxRetriesPerRequest, autoResendUnfulfilledCommands } = options as RespClientOptions;
  if (autoResendUnfulfilledCommands === true) {
    throw new ConfigurationError(
      `Unsupported ${owner}.autoResendUnfulfilledCommands=true: the built-in Redis client never sends a command again after its connection closed. ` +
        "Remove the option, or pass an ioredis client as `client` instead.",
    );
  }
  checkInteger(owner, "port", port, 1, 65535);
  checkInteger(owner, "db", db, 0, Number.MAX_SAFE_INTEGER);
  checkInteger(owner, "connectTimeout", connectTimeout, 1, Number.MAX_SAFE_INTEGER);
  if (maxRetriesPerRequest !== null) {
    checkInteger(owner, "maxRetriesPerRequest", maxRetriesPerRequest, 0, Number.MAX_SAFE_INTEGER);
  }
}

function checkInteger(owner: string, name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new ConfigurationError(`Invalid ${owner}.${name}=${String(value)}: it must be a whole number from ${min} to ${max}.`);
  }
}

/** The address members of client options, as both this client and ioredis expose them. */
export interface RedisAddress {
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly path?: string | null | undefined;
  readonly db?: number | undefined;
}

/** Returns the server address of `options` for messages, without credentials, such as `redis://localhost:6379/0`. */
export function describeAddress(options: RedisAddress): string {
  const { host, port, path, db } = options;
  const address = path !== undefined && path !== null && path !== "" ? `unix://${path}` : `redis://${host ?? "localhost"}:${port ?? 6379}`;
  return `${address}/${db ?? 0}`;
}
