/** Usage and help text of the `melodramatiq` command. */

import { DEFAULT_THREADS, DEFAULT_WORKER_SHUTDOWN_TIMEOUT, defaultProcesses, MAX_PROCESSES, MAX_THREADS } from "./arguments.js";
import { POLL_INTERVAL_MS } from "./source-watcher.js";
import { DEFAULT_WATCH_INCLUDE } from "./watch-patterns.js";

/** Returns the usage lines printed above an error and at the top of `--help`. */
export function usageText(): string {
  return [
    "usage: melodramatiq [-h] [--processes N] [--threads N] [--path DIR [DIR ...]]",
    "                    [--queues QUEUE [QUEUE ...]] [--pid-file FILE]",
    "                    [--log-file FILE] [--skip-logging]",
    "                    [--worker-shutdown-timeout MS] [--watch DIR]",
    "                    [--watch-use-polling] [-i PATTERN] [-x PATTERN]",
    "                    [--verbose] [--version]",
    "                    MODULE[:BROKER] [MODULE ...]",
    "",
  ].join("\n");
}

/** Breaks `text` at spaces so the first line fits `firstWidth` and the next ones start with `indent` spaces and end by column 80. */
function wrap(text: string, firstWidth: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const width = lines.length === 0 ? firstWidth : 80 - indent;
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Returns the full `--help` text. */
export function helpText(): string {
  return `${usageText()}
Run melodramatiq worker processes: each one imports the modules, then
consumes the broker's queues and runs the actors.

positional arguments:
  MODULE[:BROKER]       the module that sets up the broker: a file path such
                        as './app.js' or a package specifier. BROKER names
                        the export that holds the broker ('broker',
                        'app.broker') or a function that sets it up
                        (default: the export 'broker', else a default export
                        that is a Broker, else the global broker)
  MODULE                more modules to import after the first one, e.g.
                        modules that declare more actors

options:
  -h, --help            show this help message and exit
  -p N, --processes N   number of worker processes, at most ${MAX_PROCESSES}
                        (default: the number of CPUs, ${defaultProcesses()} here)
  -t N, --threads N     maximum concurrent tasks per worker process, at most
                        ${MAX_THREADS} (default: ${DEFAULT_THREADS})
  -P DIR [DIR ...], --path DIR [DIR ...]
                        base directories for resolving MODULE, tried in
                        order (default: .)
  -Q QUEUE [QUEUE ...], --queues QUEUE [QUEUE ...]
                        canonical queues to consume; their delay queues are
                        consumed too (default: every declared queue)
  --pid-file FILE       write the PID of the main process to FILE and remove
                        it at exit; exit with 4 if FILE names a running
                        process (default: no PID file)
  --log-file FILE       append all logs and the worker processes' output to
                        FILE instead of stderr (default: stderr)
  --skip-logging        do not install the command's logger; keep the
                        library's default or the logger the app sets
  --worker-shutdown-timeout MS
                        time in milliseconds that running tasks get to
                        finish after a stop signal (default: ${DEFAULT_WORKER_SHUTDOWN_TIMEOUT},
                        10 minutes)
  --watch DIR           reload the worker processes when a source file under
                        DIR changes (for development only)
  --watch-use-polling   rescan DIR every ${POLL_INTERVAL_MS} ms instead of using file
                        system events
  -i PATTERN, --watch-include PATTERN
                        also watch files matching PATTERN (repeatable; always
                        watched: ${wrap(DEFAULT_WATCH_INCLUDE.join(", "), 80 - 34, 24)})
  -x PATTERN, --watch-exclude PATTERN
                        skip files and directories matching PATTERN
                        (repeatable; node_modules and .git are always skipped)
  -v, --verbose         log debug messages
  --version             print the version and exit

--path and --queues take every word up to the next option, so put MODULE
arguments before them. TypeScript modules (.ts, .mts, .cts) load through
tsx, which must be installed. SIGHUP reloads the worker processes.

exit codes:
  0  every worker process stopped cleanly
  1  killed by a second stop signal, a worker process died from a signal,
     or an unexpected failure
  2  a module failed to load or the command line is invalid
  3  the broker could not be reached when a worker process started
  4  the PID file names a running process, contains garbage, or cannot be
     written

examples:
  # Run workers with the broker exported as 'broker' by ./app.js.
  $ melodramatiq ./app.js

  # Use the export 'redisBroker' of a TypeScript module.
  $ melodramatiq src/worker.ts:redisBroker

  # Use the property 'broker' of the export 'app'.
  $ melodramatiq ./app.js:app.broker

  # Call setupBroker() and use the broker it returns or sets globally.
  $ melodramatiq ./app.js:setupBroker

  # Import a second module that declares more actors.
  $ melodramatiq ./app.js ./reports.js

  # Run 1 process with 32 concurrent tasks on the queues "default" and "emails".
  $ melodramatiq ./app.js -p 1 -t 32 -Q default emails

  # Reload the worker processes when files under ./src change.
  $ melodramatiq --watch src src/worker.ts

  # Write the main process's PID and all logs to files.
  $ melodramatiq ./app.js --pid-file /run/melodramatiq.pid --log-file /var/log/melodramatiq.log
`;
}
