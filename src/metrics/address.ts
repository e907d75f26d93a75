/**
 * The address of the exposition server. The defaults and the environment
 * variable names are Python Dramatiq's (`dramatiq_prom_host`,
 * `dramatiq_prom_port`), so one deployment configures both libraries alike.
 */

import { ConfigurationError } from "../errors.js";

/** Environment variable that sets the host the exposition server binds to. */
export const HOST_ENV = "dramatiq_prom_host";
/** Environment variable that sets the port the exposition server listens on. */
export const PORT_ENV = "dramatiq_prom_port";
/** Host used when neither the option nor `dramatiq_prom_host` sets one: every IPv4 interface. */
export const DEFAULT_HOST = "0.0.0.0";
/** Port used when neither the option nor `dramatiq_prom_port` sets one. */
export const DEFAULT_PORT = 9191;

/** Listen address of an exposition server. */
export interface ListenAddress {
  /** Host name or IP address to bind to. @defaultValue `$dramatiq_prom_host`, else `"0.0.0.0"` */
  host?: string;
  /** TCP port; 0 picks a free port. @defaultValue `$dramatiq_prom_port`, else 9191 */
  port?: number;
}

/**
 * Returns the host and port to listen on: the options first, then the
 * environment, then the defaults. Throws a ConfigurationError for a port
 * that is not a whole number from 0 to 65535.
 */
export function resolveListenAddress(options: ListenAddress, env: NodeJS.ProcessEnv = process.env): Required<ListenAddress> {
  const host = options.host ?? nonEmpty(env[HOST_ENV]) ?? DEFAULT_HOST;

  let port: number;
  if (options.port !== undefined) {
    port = checkPort(options.port, `option port=${String(options.port)}`);
  } else {
    const text = nonEmpty(env[PORT_ENV]);
    port = text === undefined ? DEFAULT_PORT : checkPort(parsePort(text), `${PORT_ENV}=${JSON.stringify(text)}`);
  }

  return { host, port };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

/** Parses decimal digits only, so that "9191abc" or "0x23" are rejected instead of read halfway. */
function parsePort(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : Number.NaN;
}

/** Returns `port` if it is valid; `setting` names where it came from, with its value, for the error. */
function checkPort(port: number, setting: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigurationError(
      `Invalid Prometheus exposition port ${setting}: use a whole number from 0 to 65535 (0 picks a free port).`,
    );
  }
  return port;
}
