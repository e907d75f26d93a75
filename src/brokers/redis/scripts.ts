/**
 * The broker's Lua scripts: loaded from the `.lua` files beside this module,
 * run with EVALSHA, and sent in full with EVAL only when the server does not
 * have them cached yet (after a restart or SCRIPT FLUSH).
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import type { BrokerRedisClient } from "./client.js";

import { ConfigurationError } from "../../errors.js";

/** Environment variable that replaces the probe: the Lua stack size, halved into the batch size (Python Dramatiq reads the same one). */
export const LUA_MAX_STACK_VARIABLE = "dramatiq_lua_max_stack";

/** A Lua script and its SHA1, as Redis caches it. */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** Loads `fileName` from this module's folder. */
  static load(fileName: string): LuaScript {
    const url = new URL(`./${fileName}`, import.meta.url);
    let source: string;
    try {
      source = readFileSync(url, "utf8");
    } catch (error) {
      throw new ConfigurationError(
        `Failed to read the Redis broker script ${fileName} from ${url.pathname}. ` +
          "The .lua files must sit next to the broker's modules; if this is a build, copy src/brokers/redis/*.lua into it.",
        { cause: error },
      );
    }
    return new LuaScript(fileName, source);
  }

  /** Runs the script; replies keep binary strings as Buffers. */
  async run(client: BrokerRedisClient, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
    coalesceWrites(client);
    try {
      return await client.callBuffer("evalsha", [this.sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!isNoScriptError(error)) {
        throw error;
      }
      // EVAL runs the script and caches it, so the next EVALSHA succeeds.
      return await client.callBuffer("eval", [this.source, keys.length, ...keys, ...args]);
    }
  }
}

/** Sockets corked until the end of the current tick. */
const corkedSockets = new WeakSet<object>();

/**
 * Corks the client's socket until the current tick ends, so that every
 * command issued in this tick (the acks of a batch of finished messages,
 * the next fetch, concurrent enqueues) leaves in one write instead of one
 * write each. Replies and error handling stay those of single commands.
 *
 * NOTE: a synchronous actor that starts in the same tick delays these
 * writes until it returns or awaits. Its worker could not read the replies
 * before then anyway.
 */
function coalesceWrites(client: BrokerRedisClient): void {
  const socket = client.stream;
  if (socket === undefined || socket === null || !socket.writable || corkedSockets.has(socket)) {
    return;
  }

  corkedSockets.add(socket);
  socket.cork();
  process.nextTick(() => {
    corkedSockets.delete(socket);
    socket.uncork();
  });
}

function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

let dispatchScript: LuaScript | undefined;
let probeScript: LuaScript | undefined;

/** Returns the dispatch script (`dispatch.lua`), reading it once per process. */
export function getDispatchScript(): LuaScript {
  dispatchScript ??= LuaScript.load("dispatch.lua");
  return dispatchScript;
}

/**
 * Returns the batch size for one script call: half of the largest count of
 * values that `unpack()` accepts on the server, or half of the environment
 * variable `dramatiq_lua_max_stack` when it is set. Redis 7.0 allows 7997,
 * so the batch size there is 3998 (Python's own probe finds 7992, so its
 * workers use 3996; each process only uses the value for its own calls).
 */
export async function probeMaxUnpackSize(client: BrokerRedisClient): Promise<number> {
  const configured = readMaxStackVariable();
  if (configured !== undefined) {
    return Math.floor(configured / 2);
  }

  probeScript ??= LuaScript.load("max-unpack.lua");
  const reply = await probeScript.run(client, [], []);
  const maxStack = Number(reply);
  if (!Number.isInteger(maxStack) || maxStack < 2) {
    throw new ConfigurationError(
      `The Redis server's Lua stack probe returned ${String(reply)}; set ${LUA_MAX_STACK_VARIABLE} to the server's Lua stack size (8000 for stock Redis).`,
    );
  }
  return Math.floor(maxStack / 2);
}

function readMaxStackVariable(): number | undefined {
  const text = process.env[LUA_MAX_STACK_VARIABLE];
  if (text === undefined || text === "") {
    return undefined;
  }

  const value = Number(text);
  if (!Number.isInteger(value) || value < 2) {
    throw new ConfigurationError(
      `Invalid ${LUA_MAX_STACK_VARIABLE}=${JSON.stringify(text)}: it must be a whole number of at least 2 (stock Redis allows 8000).`,
    );
  }
  return value;
}
