/** Redis MONITOR on a plain socket, for tests that check the exact commands sent. */

import { once } from "node:events";
import { connect, type Socket } from "node:net";

/** Longest MONITOR line that is parsed, in UTF-16 code units. */
const MAX_LINE_LENGTH = 64 * 1024;

/**
 * A MONITOR connection on a plain socket. ioredis 6.1's monitor() mistakes
 * monitor lines for replies when other clients are busy ("Command queue
 * state error"), so the feed is parsed here: one `+<time> [<db> <source>]
 * "arg" …` line per command, in the order the server ran them.
 */
export class RawMonitor {
  readonly commands: { source: string; args: string[] }[] = [];
  private buffered = "";
  started = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffered += chunk;
      const lines = this.buffered.split("\r\n");
      this.buffered = lines.pop() ?? "";
      for (const line of lines) {
        this.parse(line);
      }
    });
  }

  static async start(): Promise<RawMonitor> {
    const socket = connect(6379, "127.0.0.1");
    await once(socket, "connect");
    const monitor = new RawMonitor(socket);
    socket.write("MONITOR\r\n");
    const deadline = Date.now() + 5000;
    while (!monitor.started) {
      if (Date.now() > deadline) {
        throw new Error("MONITOR did not start within 5 s.");
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return monitor;
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(line: string): void {
    if (line === "+OK") {
      this.started = true;
      return;
    }
    // Other test files running at the same time send bodies of many MiB,
    // on which the argument pattern below overflows V8's regexp stack.
    // Tests look only at short commands of their own.
    if (line.length > MAX_LINE_LENGTH) {
      return;
    }

    const match = /^\+\S+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
    if (match === null) {
      return;
    }
    const [, source = "", quoted = ""] = match;
    const args = [...quoted.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, arg = ""]) => arg.replace(/\\(.)/g, "$1"));
    this.commands.push({ source, args });
  }
}
