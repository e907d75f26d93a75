/**
 * Exit codes of the `melodramatiq` command, the same numbers Python
 * Dramatiq's `dramatiq` command uses, so process supervisors can treat both alike.
 */

/** Every worker process stopped cleanly. */
export const EXIT_OK = 0;

/** Killed: a second stop signal, a worker process that died from a signal, or an unexpected failure. */
export const EXIT_KILLED = 1;

/** A module failed to load, the broker was not found in it, or the command line is invalid. */
export const EXIT_IMPORT_OR_USAGE = 2;

/** The broker could not be reached when a worker process started. */
export const EXIT_CONNECTION_FAILED = 3;

/** The `--pid-file` names a live process, contains something other than a PID, or cannot be written. */
export const EXIT_PID_FILE = 4;
