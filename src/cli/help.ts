/** Usage and help text of the `melodramatiq` command. */

import { DEFAULT_THREADS, DEFAULT_WORKER_SHUTDOWN_TIMEOUT, defaultProcesses } from "./arguments.js";

/** Returns the usage lines printed above an error and at the top of `--help`. */
export function usageText(): string {
  return [
    "usage: melodramatiq [-h] [--processes N] [--threads N] [--path DIR [DIR ...]]",
    "                    [--queues QUEUE [QUEUE ...]] [--worker-shutdown-timeout MS]",
    "                    [--verbose] [--version]",
    "                    MODULE[:BROKER] [MODULE ...]",
    "",
  ].join("\n");
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
  -p N, --processes N   number of worker processes (default: the number of
                        CPUs, ${defaultProcesses()} here)
  -t N, --threads N     maximum concurrent tasks per worker process
                        (default: ${DEFAULT_THREADS})
  -P DIR [DIR ...], --path DIR [DIR ...]
                        base directories for resolving MODULE, tried in
                        order (default: .)
  -Q QUEUE [QUEUE ...], --queues QUEUE [QUEUE ...]
                        canonical queues to consume; their delay queues are
                        consumed too (default: every declared queue)
  --worker-shutdown-timeout MS
                        time in milliseconds that running tasks get to
                        finish after a stop signal (default: ${DEFAULT_WORKER_SHUTDOWN_TIMEOUT},
                        10 minutes)
  -v, --verbose         log debug messages
  --version             print the version and exit

--path and --queues take every word up to the next option, so put MODULE
arguments before them. TypeScript modules (.ts, .mts, .cts) load through
tsx, which must be installed.

exit codes:
  0  every worker process stopped cleanly
  1  killed by a second stop signal, a worker process died from a signal,
     or an unexpected failure
  2  a module failed to load or the command line is invalid
  3  the broker could not be reached when a worker process started

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
`;
}
