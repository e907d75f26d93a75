/**
 * The `--pid-file` of the main process: the PID in decimal without a
 * newline, mode 0644, created only if no live process owns the file, and
 * removed when the command exits.
 */

import { closeSync, fchmodSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";

/** The PID file cannot be used: it names a live process, contains garbage, or cannot be written. The command exits with code 4. */
export class PidFileError extends Error {
  override readonly name = "PidFileError";
}

/** A PID file written by this process. */
export interface PidFile {
  readonly path: string;
  /** Deletes the file if it still contains this process's PID. Errors are ignored: the process is exiting. */
  remove(): void;
}

/**
 * Writes `process.pid` to `path`. An existing file that names a dead process
 * (or this process, as after a container restart that reuses the PID) is
 * stale and replaced. Throws PidFileError when the file names a live
 * process, contains anything but a PID, or cannot be written.
 */
export function writePidFile(path: string): PidFile {
  // Two attempts: the second follows the removal of a stale file. If
  // another process created the file in between, it is running, and the
  // second attempt reports it.
  for (let attempt = 0; attempt < 2; attempt += 1) {
    if (createExclusively(path)) {
      return {
        path,
        remove: () => {
          removeIfOwn(path);
        },
      };
    }

    const existing = readPid(path);
    if (existing === undefined) {
      continue;
    }
    if (existing !== process.pid && isProcessRunning(existing)) {
      throw new PidFileError(`melodramatiq is already running with PID ${existing} (PID file ${path}). Stop it first, or pass another --pid-file.`);
    }

    try {
      unlinkSync(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") {
        throw new PidFileError(`Failed to remove the stale PID file ${path} of PID ${existing}: ${describeError(error)}`);
      }
    }
  }

  throw new PidFileError(`Failed to write the PID file ${path}: another process keeps creating it. Check what else writes to it.`);
}

/** Creates the file with this PID; returns false when the file exists already. */
function createExclusively(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (error) {
    if (errorCode(error) === "EEXIST") {
      return false;
    }
    throw new PidFileError(`Failed to write the PID file ${path}: ${describeError(error)}. Pass a --pid-file in a writable directory.`);
  }

  try {
    // The umask may have cleared bits of 0644; other users' tools read the file.
    fchmodSync(fd, 0o644);
    writeSync(fd, String(process.pid));
  } catch (error) {
    closeSync(fd);
    unlinkQuietly(path);
    throw new PidFileError(`Failed to write the PID file ${path}: ${describeError(error)}`);
  }
  closeSync(fd);
  return true;
}

/** Returns the PID in the file, or undefined when the file vanished. Throws PidFileError for anything but a PID. */
function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") {
      return undefined;
    }
    throw new PidFileError(`Failed to read the existing PID file ${path}: ${describeError(error)}`);
  }

  const trimmed = text.trim();
  const pid = /^\d{1,10}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new PidFileError(
      `The PID file ${path} contains ${JSON.stringify(text.slice(0, 40))}, not a PID. ` +
        "Delete it if no melodramatiq command is running, or pass another --pid-file.",
    );
  }
  return pid;
}

/** Reports whether a process with `pid` exists; EPERM means it exists under another user. */
function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

function removeIfOwn(path: string): void {
  try {
    if (readFileSync(path, "utf8").trim() === String(process.pid)) {
      unlinkSync(path);
    }
  } catch {
    // Already gone, or replaced by hand: nothing of ours to remove.
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // The file may not exist; the caller reports the original error.
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
