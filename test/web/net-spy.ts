/** Records every TCP connection attempt of this process, to prove that code opens none. */

import net from "node:net";

export interface ConnectionSpy {
  /** One entry per `Socket.connect()` call: the host and port, as far as they can be read. */
  readonly attempts: string[];
  restore(): void;
}

/** Wraps `net.Socket.prototype.connect`, which amqplib, ioredis and fetch all reach, until `restore()`. */
export function spyOnConnections(): ConnectionSpy {
  // Only ever called with a socket as `this`, or put back on the prototype.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = net.Socket.prototype.connect;
  const callOriginal = original as (this: net.Socket, ...args: unknown[]) => net.Socket;
  const attempts: string[] = [];

  net.Socket.prototype.connect = function connect(this: net.Socket, ...args: unknown[]): net.Socket {
    attempts.push(describeTarget(args));
    return callOriginal.apply(this, args);
  };

  return {
    attempts,
    restore() {
      net.Socket.prototype.connect = original;
    },
  };
}

function describeTarget(args: readonly unknown[]): string {
  const [first, second] = args;
  if (Array.isArray(first)) {
    return describeTarget(first as unknown[]);
  }
  if (typeof first === "object" && first !== null) {
    const { host, port, path } = first as { host?: unknown; port?: unknown; path?: unknown };
    return typeof path === "string" ? path : `${typeof host === "string" ? host : "localhost"}:${String(port)}`;
  }
  return `${typeof second === "string" ? second : "localhost"}:${String(first)}`;
}
