/** MULTI/EXEC transactions of the built-in client, with the result shape of ioredis's `multi(commands).exec()`. */

import type { CommandArgument } from "./encode.js";
import { ProtocolError, ReplyError } from "./errors.js";
import type { Reply } from "./reply-parser.js";

/** One command of a transaction: its name, then its arguments, as ioredis's `multi(commands)` takes them. */
export type TransactionCommand = [name: string, ...args: CommandArgument[]];

/**
 * The result of EXEC: one `[error, result]` pair per queued command, or
 * null when EXEC aborted because a key watched with WATCH changed.
 */
export type ExecResult = [error: Error | null, result: unknown][] | null;

/** A transaction that `exec()` sends, like the object ioredis's `multi(commands)` returns. */
export interface RespTransaction {
  exec(): Promise<ExecResult>;
}

/**
 * Combines the replies of MULTI, the queued commands and EXEC, given in
 * that order, into the result of EXEC.
 *
 * Rejects with the first connection error when the connection failed
 * before EXEC's reply arrived, so the server discarded the transaction or
 * may have run it. Rejects with a ReplyError when the server refused the
 * transaction, such as EXECABORT after a command failed to queue.
 */
export async function settleTransaction(replies: readonly Promise<Reply>[]): Promise<ExecResult> {
  const outcomes = await Promise.allSettled(replies);
  const failures = outcomes.flatMap((outcome): unknown[] => (outcome.status === "rejected" ? [outcome.reason] : []));
  // The client rejects commands only with Error objects: ReplyError for an error reply, RedisConnectionError otherwise.
  const connectionFailure = failures.find((reason): reason is Error => reason instanceof Error && !(reason instanceof ReplyError));
  if (connectionFailure !== undefined) {
    throw connectionFailure;
  }

  const multi = outcomes.at(0);
  const exec = outcomes.at(-1);
  if (multi === undefined || exec === undefined || outcomes.length < 2) {
    throw new ProtocolError("Invalid transaction: it needs the replies of MULTI and EXEC.");
  }
  // An error reply to MULTI means the commands did not run inside this transaction, whatever EXEC replied.
  if (multi.status === "rejected") {
    throw asReplyError(multi.reason);
  }
  if (exec.status === "rejected") {
    const queued = outcomes.slice(1, -1).find((outcome) => outcome.status === "rejected");
    throw refusal(asReplyError(exec.reason), queued === undefined ? undefined : asReplyError(queued.reason));
  }

  const reply = exec.value;
  if (reply === null) {
    return null;
  }
  if (!Array.isArray(reply)) {
    throw new ProtocolError(`Invalid EXEC reply ${JSON.stringify(String(reply))}: expected an array or nil.`);
  }
  return reply.map((item): [Error | null, unknown] => (item instanceof ReplyError ? [item, null] : [null, item]));
}

/** Returns EXEC's error reply, with the first command that failed to queue appended, since EXECABORT alone does not say why. */
function refusal(exec: ReplyError, queued: ReplyError | undefined): ReplyError {
  if (queued === undefined) {
    return exec;
  }
  return new ReplyError(`${exec.message} The first command that failed to queue replied: ${queued.message}`, { cause: queued });
}

/** Narrows a rejection reason already known to be a ReplyError. */
function asReplyError(reason: unknown): ReplyError {
  return reason instanceof ReplyError ? reason : new ReplyError(String(reason));
}
