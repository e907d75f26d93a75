/** Captures log records for assertions, replacing the root logger until `restore()`. */

import { getRootLogger, setLogger, type LogFields, type Logger } from "../../src/logger.js";

export interface LogRecord {
  level: "debug" | "info" | "warn" | "error";
  fields: LogFields;
  message: string;
}

export interface LogCapture {
  readonly records: LogRecord[];
  /** Records at `level` whose text contains `fragment`. */
  find(level: LogRecord["level"], fragment: string): LogRecord[];
  restore(): void;
}

/** Installs a recording logger; set `echo` to also print lines (useful when debugging a test). */
export function captureLogs(options: { echo?: boolean } = {}): LogCapture {
  const previous = getRootLogger();
  const records: LogRecord[] = [];
  const record =
    (level: LogRecord["level"]) =>
    (fields: LogFields, message: string): void => {
      records.push({ level, fields, message });
      if (options.echo === true) {
        previous[level](fields, message);
      }
    };
  const logger: Logger = { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") };
  setLogger(logger);

  return {
    records,
    find: (level, fragment) => records.filter((entry) => entry.level === level && entry.message.includes(fragment)),
    restore: () => {
      setLogger(previous);
    },
  };
}
