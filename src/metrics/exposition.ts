/**
 * The exposition server: a small HTTP server that returns the Prometheus
 * text format for `GET /metrics` and 404 for every other path. It runs
 * either in the single process that owns the metrics
 * (`Prometheus.startServer()`) or in the main process of the `melodramatiq`
 * command, where it merges the snapshots of the worker processes on each
 * scrape (`startExpositionServer()`).
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { ConfigurationError } from "../errors.js";
import { getLogger } from "../logger.js";
import { HOST_ENV, PORT_ENV, resolveListenAddress, type ListenAddress } from "./address.js";
import { aggregateSnapshots, type MetricsSnapshot } from "./aggregate.js";

/** A scrape response: the text format and its content type. */
export interface RenderedMetrics {
  readonly contentType: string;
  readonly body: string;
}

/** A running exposition server. */
export interface ExpositionServer {
  /** The host it is bound to. */
  readonly host: string;
  /** The port it listens on; the chosen port when 0 was requested. */
  readonly port: number;
  /** The scrape URL, e.g. `http://127.0.0.1:9191/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections. Safe to call more than once. */
  close(): Promise<void>;
}

/** Options of startExpositionServer(). */
export interface ExpositionServerOptions extends ListenAddress {
  /**
   * Returns one snapshot per process, e.g. by asking every worker process
   * with `gatherFromWorkerProcesses()`. Called on every scrape; when it
   * rejects, the scrape gets a 500 response.
   */
  gather: () => Promise<readonly MetricsSnapshot[]>;
}

const logger = getLogger("melodramatiq.metrics.ExpositionServer");

/** The only path that serves metrics. */
const METRICS_PATH = "/metrics";

/**
 * Starts a server whose scrapes return the merge of the snapshots that
 * `gather()` returns. Counters and histograms are summed across
 * snapshots; see each metric's `aggregator` for gauges. Rejects with a
 * ConfigurationError when the address cannot be bound, and when prom-client
 * is not installed.
 */
export async function startExpositionServer(options: ExpositionServerOptions): Promise<ExpositionServer> {
  // Fail at start, not at the first scrape, when prom-client is missing.
  aggregateSnapshots([]);

  const { gather } = options;
  return listenForScrapes(resolveListenAddress(options), async () => {
    const registry = aggregateSnapshots(await gather());
    return { contentType: registry.contentType, body: await registry.metrics() };
  });
}

/**
 * Starts a server that responds to scrapes with the output of `render()`. Rejects with a
 * ConfigurationError that names the address when it cannot be bound.
 */
export async function listenForScrapes(address: Required<ListenAddress>, render: () => Promise<RenderedMetrics>): Promise<ExpositionServer> {
  const server = createServer((request, response) => {
    void respond(request, response, render);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new ConfigurationError(
          `Failed to start the Prometheus exposition server on ${formatHost(address.host)}:${address.port} (${error.code ?? error.message}). ` +
            `Choose another host or port with the host and port options or the ${HOST_ENV} and ${PORT_ENV} environment variables.`,
          { cause: error },
        ),
      );
    };
    server.once("error", onError);
    server.listen(address.port, address.host, () => {
      server.off("error", onError);
      resolve();
    });
  });

  server.on("error", (error) => {
    logger.error({ err: error }, "The Prometheus exposition server failed.");
  });

  const port = (server.address() as AddressInfo).port;
  const url = `http://${formatHost(address.host)}:${port}${METRICS_PATH}`;
  logger.info({ host: address.host, port }, `Serving Prometheus metrics at ${url}.`);

  let closing: Promise<void> | undefined;
  return {
    host: address.host,
    port,
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          logger.info({ host: address.host, port }, `Stopped serving Prometheus metrics at ${url}.`);
          resolve();
        });
        // Scrapers keep connections alive; without this close() would wait for them to time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function respond(request: IncomingMessage, response: ServerResponse, render: () => Promise<RenderedMetrics>): Promise<void> {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (path !== METRICS_PATH) {
    reply(response, 404, `Not found: Prometheus metrics are served at ${METRICS_PATH}.\n`);
    return;
  }

  if (request.method !== "GET" && request.method !== "HEAD") {
    response.setHeader("allow", "GET, HEAD");
    reply(response, 405, `Method ${request.method ?? "unknown"} is not allowed on ${METRICS_PATH}: use GET.\n`);
    return;
  }

  let rendered: RenderedMetrics;
  try {
    rendered = await render();
  } catch (error) {
    logger.error({ err: error }, "Failed to collect the metrics for a scrape.");
    reply(response, 500, "Failed to collect the metrics; see the worker's log.\n");
    return;
  }

  response.statusCode = 200;
  response.setHeader("content-type", rendered.contentType);
  response.end(request.method === "HEAD" ? undefined : rendered.body);
}

function reply(response: ServerResponse, status: number, text: string): void {
  response.statusCode = status;
  response.setHeader("content-type", "text/plain; charset=utf-8");
  response.end(text);
}

/** Puts an IPv6 address in brackets, as URLs and `host:port` pairs need. */
function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
