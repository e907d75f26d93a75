/**
 * The `--log-file` of the command. The main process opens the file in
 * append mode (O_APPEND) and gives the descriptor to each worker process as
 * its stdout and stderr. So the file receives the workers' log lines and
 * everything else they print (console output, crash traces), even after
 * the main process has died.
 *
 * Lines do not interleave mid-line: every log record is written with one
 * write() call (the main process's logger calls writeSync; Node writes to
 * a file-backed process.stderr synchronously), and Linux appends each
 * write() to a local file as a whole. NOTE: network file systems such as
 * NFS do not guarantee atomic appends.
 */

import { closeSync, openSync, writeSync } from "node:fs";

/** An open log file. */
export class LogFile {
  private fd: number;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens `path` for appending, creating it if needed. Throws the file system error, e.g. ENOENT for a missing directory. */
  static open(path: string): LogFile {
    return new LogFile(path, openAppend(path));
  }

  /** The descriptor that worker processes receive as stdout and stderr. */
  get descriptor(): number {
    return this.fd;
  }

  /** A stream for ConsoleLogger that writes each record with one write() call. */
  readonly stream = {
    write: (text: string): boolean => {
      try {
        writeSync(this.fd, text);
        return true;
      } catch (error) {
        // A full disk must not crash the main process, which supervises the workers.
        process.stderr.write(`melodramatiq: failed to write to the log file ${this.path}: ${error instanceof Error ? error.message : String(error)}\n${text}`);
        return false;
      }
    },
  };

  /**
   * Opens the path again and closes the old descriptor, so that a log file
   * renamed by a log rotation tool is followed by a new one. Worker
   * processes started afterwards write to the new file. Throws the file
   * system error and keeps the old descriptor if the path cannot be opened.
   */
  reopen(): void {
    const fd = openAppend(this.path);
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // Closed already.
    }
  }
}

function openAppend(path: string): number {
  return openSync(path, "a", 0o644);
}
