/**
 * A loopback TCP proxy for simulating a broker outage without stopping the
 * shared server: clients connect to the proxy, which forwards bytes to the
 * target.
 *
 * - `cut()` drops every open connection, as a killed server does.
 * - `freeze()` stops forwarding on open connections without closing them, as a network partition does.
 * - `pause()` makes new connections fail at once until `resume()`.
 */

import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";

/** Where the proxy forwards to. */
export interface ProxyTarget {
  host: string;
  port: number;
}

export class TcpProxy {
  /** Open client sockets, each with the upstream socket it is piped to. */
  private readonly pairs = new Map<Socket, { upstream: Socket; frozen: boolean }>();
  private paused = false;
  private accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly target: ProxyTarget,
  ) {}

  /** Starts a proxy on 127.0.0.1 at a free port, forwarding to `target`. */
  static async start(target: ProxyTarget): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on("connection", (client) => {
      proxy.accept(client);
    });

    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections accepted and forwarded so far (refused ones excluded). */
  get acceptedCount(): number {
    return this.accepted;
  }

  /** Client connections currently open through the proxy. */
  get openCount(): number {
    return this.pairs.size;
  }

  /** Returns `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = "127.0.0.1";
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** Destroys every open connection, on both sides, as a killed server would. */
  cut(): void {
    for (const [client, { upstream }] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /**
   * Stops forwarding bytes on every open connection but leaves it open, so
   * only a heartbeat or a timeout can notice. New connections are forwarded;
   * `cut()` and `close()` also end frozen ones.
   */
  freeze(): void {
    for (const [client, pair] of this.pairs) {
      pair.frozen = true;
      client.unpipe(pair.upstream);
      pair.upstream.unpipe(client);
      client.pause();
      pair.upstream.pause();
    }
  }

  /** Makes new connections close as soon as they are accepted, until `resume()`. Open connections stay. */
  pause(): void {
    this.paused = true;
  }

  /** Forwards new connections again. */
  resume(): void {
    this.paused = false;
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  private accept(client: Socket): void {
    if (this.paused) {
      client.destroy();
      return;
    }

    this.accepted += 1;
    const upstream = connect(this.target.port, this.target.host);
    const pair = { upstream, frozen: false };
    this.pairs.set(client, pair);

    // A frozen pair passes nothing on, not even one side closing.
    const drop = (): void => {
      if (pair.frozen) {
        return;
      }
      client.destroy();
      upstream.destroy();
      this.pairs.delete(client);
    };
    // An error on either side ends the pair, and the client under test gets the close.
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);

    client.pipe(upstream);
    upstream.pipe(client);
  }
}
