/** Errors of the built-in Redis client. */

/** An error reply of the server; `message` is the server's text, such as "NOSCRIPT No matching script…". */
export class ReplyError extends Error {
  override readonly name = "ReplyError";
}

/**
 * A command that failed because of the connection, not the server: it was
 * in flight when the connection closed, or it waited through the allowed
 * reconnection attempts, or the client was closed.
 */
export class RedisConnectionError extends Error {
  override readonly name = "RedisConnectionError";
}

/** Bytes from the server that are not RESP2; the client drops the connection on it. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}
