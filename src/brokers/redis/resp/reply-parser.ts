/**
 * A streaming RESP2 reply parser. It keeps its place between chunks, so a
 * reply may be split at any byte, and it never parses a byte twice. A
 * partial header line is carried over (it is short), the parts of a bulk
 * string are collected and joined once, and open arrays stay on a stack.
 */

import { ProtocolError, ReplyError } from "./errors.js";

/** A parsed reply: text, integer, null, an error reply, or an array of these. */
export type Reply = string | Buffer | number | null | ReplyError | Reply[];

/** Callbacks of a ReplyParser. */
export interface ReplyParserHandlers {
  /** Called once per complete top-level reply. */
  readonly onReply: (reply: Reply) => void;
  /** Called before each top-level reply: true keeps its strings as Buffers, false decodes them as UTF-8. */
  readonly wantsBuffers: () => boolean;
}

interface OpenArray {
  readonly items: Reply[];
  remaining: number;
}

interface PartialBulkString {
  /** Bytes still expected, including the closing CRLF. */
  remaining: number;
  readonly parts: Buffer[];
}

const CR = 13;
const LF = 10;

export class ReplyParser {
  private pending: Buffer | undefined;
  private bulk: PartialBulkString | undefined;
  private readonly stack: OpenArray[] = [];
  private buffers = false;

  constructor(private readonly handlers: ReplyParserHandlers) {}

  /** Parses `chunk`, calling `onReply` for each reply it completes. Throws ProtocolError on bytes that are not RESP2. */
  feed(chunk: Buffer): void {
    let data = chunk;
    if (this.pending !== undefined) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }

    let offset = 0;
    if (this.bulk !== undefined) {
      offset = this.continueBulkString(this.bulk, data);
    }

    while (offset < data.length) {
      if (this.stack.length === 0) {
        this.buffers = this.handlers.wantsBuffers();
      }

      const lineEnd = data.indexOf(CR, offset);
      if (lineEnd === -1 || lineEnd + 1 >= data.length) {
        // A header line split across chunks: only this short tail is kept.
        this.pending = Buffer.from(data.subarray(offset));
        return;
      }
      if (data[lineEnd + 1] !== LF) {
        throw new ProtocolError(`Invalid RESP2 reply: a line ends in CR without LF at byte ${lineEnd}.`);
      }

      offset = this.parseLine(data, offset, lineEnd);
    }
  }

  /** Drops any partial reply, for a new connection. */
  reset(): void {
    this.pending = undefined;
    this.bulk = undefined;
    this.stack.length = 0;
  }

  /** Parses the header line `data[start, lineEnd)` and, for a bulk string, its body. Returns the offset after what it consumed. */
  private parseLine(data: Buffer, start: number, lineEnd: number): number {
    const type = data[start];
    const next = lineEnd + 2;

    switch (type) {
      case 0x2b: // '+' simple string
        this.emit(this.buffers ? Buffer.from(data.subarray(start + 1, lineEnd)) : data.toString("utf8", start + 1, lineEnd));
        return next;
      case 0x2d: // '-' error
        this.emit(new ReplyError(data.toString("utf8", start + 1, lineEnd)));
        return next;
      case 0x3a: // ':' integer
        this.emit(parseInteger(data, start + 1, lineEnd));
        return next;
      case 0x24: // '$' bulk string
        return this.startBulkString(data, parseInteger(data, start + 1, lineEnd), next);
      case 0x2a: // '*' array
        this.startArray(parseInteger(data, start + 1, lineEnd));
        return next;
      default:
        throw new ProtocolError(`Invalid RESP2 reply: unknown type byte 0x${(type ?? 0).toString(16)} at byte ${start}.`);
    }
  }

  private startBulkString(data: Buffer, length: number, bodyStart: number): number {
    if (length === -1) {
      this.emit(null);
      return bodyStart;
    }
    if (length < 0) {
      throw new ProtocolError(`Invalid RESP2 reply: bulk string length ${length}.`);
    }

    const end = bodyStart + length;
    if (end + 2 <= data.length) {
      this.emit(this.decodeBody(data, bodyStart, end));
      return end + 2;
    }

    // The body continues in later chunks; its parts are joined once it is complete.
    this.bulk = { remaining: length + 2, parts: [] };
    return this.continueBulkString(this.bulk, data.subarray(bodyStart)) + bodyStart;
  }

  /** Takes the next bytes of a partial bulk string from `data`; returns how many it took. */
  private continueBulkString(bulk: PartialBulkString, data: Buffer): number {
    const consumed = Math.min(bulk.remaining, data.length);
    bulk.parts.push(data.subarray(0, consumed));
    bulk.remaining -= consumed;
    if (bulk.remaining > 0) {
      return consumed;
    }

    this.bulk = undefined;
    const whole = Buffer.concat(bulk.parts);
    const body = whole.subarray(0, whole.length - 2);
    // `whole` is a fresh allocation, so Buffer mode can return a view of it without a second copy.
    this.emit(this.buffers ? body : body.toString("utf8"));
    return consumed;
  }

  private decodeBody(data: Buffer, start: number, end: number): string | Buffer {
    if (!this.buffers) {
      return data.toString("utf8", start, end);
    }
    // A copy, so that a small reply does not keep the whole socket chunk alive.
    return Buffer.from(data.subarray(start, end));
  }

  private startArray(length: number): void {
    if (length === -1) {
      this.emit(null);
      return;
    }
    if (length < 0) {
      throw new ProtocolError(`Invalid RESP2 reply: array length ${length}.`);
    }
    if (length === 0) {
      this.emit([]);
      return;
    }
    this.stack.push({ items: [], remaining: length });
  }

  /** Adds a finished value to the innermost open array, closing arrays that it completes, or reports it as a reply. */
  private emit(value: Reply): void {
    let finished = value;
    for (;;) {
      const top = this.stack.at(-1);
      if (top === undefined) {
        this.handlers.onReply(finished);
        return;
      }

      top.items.push(finished);
      top.remaining -= 1;
      if (top.remaining > 0) {
        return;
      }
      this.stack.pop();
      finished = top.items;
    }
  }
}

function parseInteger(data: Buffer, start: number, end: number): number {
  const text = data.toString("latin1", start, end);
  const value = Number(text);
  if (text === "" || !Number.isInteger(value)) {
    throw new ProtocolError(`Invalid RESP2 reply: ${JSON.stringify(text)} is not an integer.`);
  }
  return value;
}
