/** RESP2 encoding of commands, as arrays of bulk strings. */

/** One command argument; numbers are sent in their decimal form. */
export type CommandArgument = string | Buffer | number;

/**
 * Encodes `args` as one RESP2 array. Returns the pieces to write in order:
 * string arguments are joined into the surrounding text, while Buffer
 * arguments are returned as they are, so a large message body is never copied.
 */
export function encodeCommand(args: readonly CommandArgument[]): (string | Buffer)[] {
  const pieces: (string | Buffer)[] = [];
  let text = `*${args.length}\r\n`;

  for (const arg of args) {
    if (Buffer.isBuffer(arg)) {
      text += `$${arg.length}\r\n`;
      pieces.push(text, arg);
      text = "\r\n";
      continue;
    }

    const value = typeof arg === "number" ? String(arg) : arg;
    text += `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
  }

  pieces.push(text);
  return pieces;
}
