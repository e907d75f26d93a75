/**
 * Logging. The library writes through an injectable `Logger` whose methods
 * take structured fields first and the text second, the way pino does, so
 * the same calls also work with `console`. Components log under a dotted
 * name such as `melodramatiq.worker.Worker`.
 */

/** Structured fields attached to a log line, e.g. `{ messageId, actorName }`. */
export type LogFields = Record<string, unknown>;

/** The subset of a logger that melodramatiq calls. pino, bunyan-style and custom loggers fit. */
export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Options of the built-in logger. */
export interface ConsoleLoggerOptions {
  /** Lowest level written. @defaultValue `"info"` */
  level?: LogLevel;
  /** Destination of the lines. @defaultValue `process.stderr` */
  stream?: { write(text: string): unknown };
}

/**
 * The default logger: one line per record on stderr, in the layout of Python
 * Dramatiq's worker logs so that mixed fleets read alike:
 * `[2026-12-04 19:14:56,487] [PID 123] [melodramatiq.worker.Worker] [INFO] Text (messageId=…)`.
 */
export class ConsoleLogger implements Logger {
  level: LogLevel;
  private readonly stream: { write(text: string): unknown };

  constructor(options: ConsoleLoggerOptions = {}) {
    this.level = options.level ?? "info";
    this.stream = options.stream ?? process.stderr;
  }

  debug(fields: LogFields, message: string): void {
    this.write("debug", fields, message);
  }

  info(fields: LogFields, message: string): void {
    this.write("info", fields, message);
  }

  warn(fields: LogFields, message: string): void {
    this.write("warn", fields, message);
  }

  error(fields: LogFields, message: string): void {
    this.write("error", fields, message);
  }

  private write(level: LogLevel, fields: LogFields, message: string): void {
    if (levelRank[level] < levelRank[this.level]) {
      return;
    }

    const { logger: name, err, ...rest } = fields;
    const extras = Object.entries(rest)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${formatValue(value)}`);
    const suffix = extras.length > 0 ? ` (${extras.join(", ")})` : "";
    const stack = err instanceof Error ? `\n${formatErrorStack(err)}` : "";
    const label = level === "warn" ? "WARNING" : level.toUpperCase();
    const component = typeof name === "string" ? name : "melodramatiq";
    this.stream.write(`[${formatTime(new Date())}] [PID ${process.pid}] [${component}] [${label}] ${message}${suffix}${stack}\n`);
  }
}

function formatValue(value: unknown): string {
  if (typeof value === "string") {
    return value;
  }

  try {
    return JSON.stringify(value, (_key, inner: unknown) => (typeof inner === "bigint" ? inner.toString() : inner)) ?? String(value);
  } catch {
    return String(value);
  }
}

function formatErrorStack(error: Error): string {
  let text = error.stack ?? `${error.name}: ${error.message}`;
  let cause = error.cause;
  let depth = 0;

  // Causes chain to the root problem, e.g. a ConnectionFailedError caused by ECONNREFUSED.
  while (cause !== undefined && depth < 5) {
    text += cause instanceof Error ? `\nCaused by: ${cause.stack ?? cause.message}` : `\nCaused by: ${formatValue(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
    depth += 1;
  }

  return text;
}

function formatTime(date: Date): string {
  const pad = (value: number, width = 2): string => String(value).padStart(width, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return `${day} ${time},${pad(date.getMilliseconds(), 3)}`;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

let rootLogger: Logger = new ConsoleLogger({ level: logLevelFromEnvironment() });

function logLevelFromEnvironment(): LogLevel {
  // "warning" is accepted too, since log lines print that level as WARNING.
  const value = process.env["MELODRAMATIQ_LOG_LEVEL"]?.toLowerCase().replace(/^warning$/, "warn");
  const known: LogLevel[] = ["debug", "info", "warn", "error", "silent"];
  return known.find((level) => level === value) ?? "info";
}

/** Replaces the logger that every component writes to (the default writes to stderr). */
export function setLogger(logger: Logger): void {
  rootLogger = logger;
}

/** Returns the logger currently installed with `setLogger`. */
export function getRootLogger(): Logger {
  return rootLogger;
}

/**
 * Returns a logger that adds `logger: name` to every line and forwards to
 * the root logger current at call time, so `setLogger()` also affects
 * components created earlier.
 */
export function getLogger(name: string): Logger {
  const forward =
    (level: "debug" | "info" | "warn" | "error") =>
    (fields: LogFields, message: string): void => {
      rootLogger[level]({ logger: name, ...fields }, message);
    };

  return { debug: forward("debug"), info: forward("info"), warn: forward("warn"), error: forward("error") };
}

/**
 * Returns `url` with any password replaced by `***`, for log lines and error
 * messages. Text that does not parse as a URL is returned unchanged.
 */
export function redactUrl(url: string): string {
  // Fail-over lists join several URLs with ';', and each may carry a password.
  if (url.includes(";")) {
    return url.split(";").map(redactOneUrl).join(";");
  }
  return redactOneUrl(url);
}

/** Query parameters whose values are secrets (redis-py accepts `?password=`). */
const secretQueryParameters = /([?&](?:password|pass|pwd|secret|token)=)[^&#]*/gi;

function redactOneUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") {
      parsed.password = "***";
    }
    return parsed.toString().replace(secretQueryParameters, "$1***");
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/g, "//$1:***@").replace(secretQueryParameters, "$1***");
  }
}
