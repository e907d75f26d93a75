/**
 * Command-line parsing for `melodramatiq`, with the flags of Python
 * Dramatiq's `dramatiq` command. `--queues` and `--path` take several
 * values like argparse's `nargs="*"`: every word after them up to the next
 * option belongs to them, so MODULE arguments go before those flags.
 */

import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

import { ConfigurationError } from "../errors.js";
import { validateQueueName } from "../message/queue-names.js";
import { parseModuleSpec, type ModuleSpec } from "./module-spec.js";
import { UsageError } from "./usage-error.js";

/** Settings of a worker run, after parsing and validation. */
export interface CliOptions {
  /** The first MODULE, which provides the broker. */
  readonly brokerModule: ModuleSpec;
  /** More modules, imported after the broker module. */
  readonly modules: readonly string[];
  /** Number of worker processes, at most MAX_PROCESSES. @defaultValue the number of CPUs */
  readonly processes: number;
  /** Concurrent tasks per worker process, at most MAX_THREADS. @defaultValue 8 */
  readonly threads: number;
  /** Canonical queues to consume. @defaultValue undefined: every queue declared on the broker */
  readonly queues: readonly string[] | undefined;
  /** Base directories for resolving modules, as given. @defaultValue `["."]` */
  readonly paths: readonly string[];
  /** Milliseconds running tasks get to finish after a stop signal, at most MAX_WORKER_SHUTDOWN_TIMEOUT. @defaultValue 600000 */
  readonly workerShutdownTimeout: number;
  /** Log at debug level. @defaultValue false */
  readonly verbose: boolean;
  /** File that receives the main process's PID while the command runs. @defaultValue undefined: no PID file */
  readonly pidFile: string | undefined;
  /** File that all logs and the worker processes' output are appended to. @defaultValue undefined: stderr */
  readonly logFile: string | undefined;
  /** Leave the logger as the library default or the app sets it, instead of installing the CLI's. @defaultValue false */
  readonly skipLogging: boolean;
  /** Reload the worker processes when source files change. @defaultValue undefined: no watching */
  readonly watch: WatchOptions | undefined;
}

/** Settings of `--watch` and the flags that go with it. */
export interface WatchOptions {
  /** The directory to watch, as given. */
  readonly directory: string;
  /** Poll the files instead of using file system events. @defaultValue false */
  readonly polling: boolean;
  /** Patterns of files to watch, added to DEFAULT_WATCH_INCLUDE. */
  readonly include: readonly string[];
  /** Patterns of files and directories to skip, added to ALWAYS_WATCH_EXCLUDE. */
  readonly exclude: readonly string[];
}

/** The action the command line requests: run the workers, print the help or print the version. */
export type ParsedCommand = { readonly kind: "run"; readonly options: CliOptions } | { readonly kind: "help" } | { readonly kind: "version" };

export const DEFAULT_THREADS = 8;
export const DEFAULT_WORKER_SHUTDOWN_TIMEOUT = 600_000;

/**
 * Maximum `--processes`. Each worker process is a whole Node process with
 * its own heap and its own broker connections, and concurrency inside one
 * comes from `--threads`, so processes beyond the CPU count only add memory
 * and connections. 1024 is above the CPU count of large servers and still
 * rejects a typo such as `-p 99999999`, which would fork until the machine
 * or the broker runs out of memory or file descriptors.
 */
export const MAX_PROCESSES = 1024;

/**
 * Maximum `--threads`: a worker prefetches 2 × threads messages per queue,
 * and AMQP 0-9-1 carries a prefetch count in 16 bits (at most 65535).
 */
export const MAX_THREADS = 32_767;

/** Maximum `--worker-shutdown-timeout`: Node's setTimeout() fires after 1 ms for a delay above 2^31 - 1 ms (about 24.8 days). */
export const MAX_WORKER_SHUTDOWN_TIMEOUT = 2_147_483_647;

/** A whole-number flag's valid range, and why its maximum is what it is. */
interface CountRange {
  readonly minimum: number;
  readonly maximum: number;
  readonly maximumReason: string;
}

const processesRange: CountRange = {
  minimum: 1,
  maximum: MAX_PROCESSES,
  maximumReason: "Each worker process is a Node process with its own memory and broker connections, so run the command on several machines for more.",
};
const threadsRange: CountRange = {
  minimum: 1,
  maximum: MAX_THREADS,
  maximumReason: "A worker process prefetches 2 × threads messages per queue, and AMQP 0-9-1 limits a prefetch count to 65535.",
};
const shutdownTimeoutRange: CountRange = {
  minimum: 0,
  maximum: MAX_WORKER_SHUTDOWN_TIMEOUT,
  maximumReason: "Node's timers cannot wait longer (about 24.8 days).",
};

const optionConfig = {
  processes: { type: "string", short: "p" },
  threads: { type: "string", short: "t" },
  path: { type: "string", short: "P", multiple: true },
  queues: { type: "string", short: "Q", multiple: true },
  "worker-shutdown-timeout": { type: "string" },
  "pid-file": { type: "string" },
  "log-file": { type: "string" },
  "skip-logging": { type: "boolean" },
  watch: { type: "string" },
  "watch-use-polling": { type: "boolean" },
  "watch-include": { type: "string", short: "i", multiple: true },
  "watch-exclude": { type: "string", short: "x", multiple: true },
  verbose: { type: "boolean", short: "v" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type VariadicOption = "path" | "queues";

/** Returns the default number of worker processes: the CPUs available to this process, at most MAX_PROCESSES. */
export function defaultProcesses(): number {
  return Math.min(availableParallelism(), MAX_PROCESSES);
}

/** Parses `argv` (without the node and script paths). Throws UsageError for an invalid command line. */
export function parseCommandLine(argv: readonly string[]): ParsedCommand {
  const { values, positionals, variadic } = tokenize(argv);
  if (values.help === true) {
    return { kind: "help" };
  }
  if (values.version === true) {
    return { kind: "version" };
  }

  const [first, ...rest] = positionals;
  if (first === undefined) {
    throw new UsageError("the following arguments are required: MODULE[:BROKER]");
  }

  const brokerModule = parseModuleSpec(first);
  for (const module of rest) {
    const spec = parseModuleSpec(module);
    if (spec.brokerName !== undefined) {
      throw new UsageError(`invalid module ${JSON.stringify(module)}: only the first MODULE can name a broker with ':'`);
    }
  }

  const options: CliOptions = {
    brokerModule,
    modules: rest,
    processes: parseCount("--processes/-p", values.processes, defaultProcesses(), processesRange),
    threads: parseCount("--threads/-t", values.threads, DEFAULT_THREADS, threadsRange),
    queues: variadic.queues === undefined ? undefined : validateQueues(variadic.queues),
    paths: variadic.path ?? ["."],
    workerShutdownTimeout: parseCount("--worker-shutdown-timeout", values["worker-shutdown-timeout"], DEFAULT_WORKER_SHUTDOWN_TIMEOUT, shutdownTimeoutRange),
    verbose: values.verbose === true,
    pidFile: nonEmpty("--pid-file", values["pid-file"]),
    logFile: nonEmpty("--log-file", values["log-file"]),
    skipLogging: values["skip-logging"] === true,
    watch: parseWatchOptions(values),
  };
  return { kind: "run", options };
}

type ParsedValues = ReturnType<typeof tokenize>["values"];

/** Returns the `--watch` settings, or undefined without `--watch`; the other watch flags need `--watch`. */
function parseWatchOptions(values: ParsedValues): WatchOptions | undefined {
  const include = values["watch-include"] ?? [];
  const exclude = values["watch-exclude"] ?? [];
  const directory = nonEmpty("--watch", values.watch);
  if (directory === undefined) {
    const stray = [
      values["watch-use-polling"] === true ? "--watch-use-polling" : undefined,
      include.length > 0 ? "-i/--watch-include" : undefined,
      exclude.length > 0 ? "-x/--watch-exclude" : undefined,
    ].find((flag) => flag !== undefined);
    if (stray !== undefined) {
      throw new UsageError(`argument ${stray}: only valid with --watch DIR`);
    }
    return undefined;
  }

  for (const [flag, patterns] of [["-i/--watch-include", include], ["-x/--watch-exclude", exclude]] as const) {
    const empty = patterns.find((pattern) => pattern.trim() === "");
    if (empty !== undefined) {
      throw new UsageError(`argument ${flag}: expected a pattern such as '**/*.ts', got an empty value`);
    }
  }

  return { directory, polling: values["watch-use-polling"] === true, include, exclude };
}

/** Returns `value`, or undefined when the flag is absent; an empty value is a usage error. */
function nonEmpty(flag: string, value: string | undefined): string | undefined {
  if (value === "") {
    throw new UsageError(`argument ${flag}: expected a path, got an empty value`);
  }
  return value;
}

/**
 * Runs node:util's parseArgs, then moves the words that follow `--queues`
 * or `--path` from the positionals to that option, because parseArgs gives
 * each option a single value.
 */
function tokenize(argv: readonly string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: optionConfig, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }

  const positionals: string[] = [];
  const variadic: Partial<Record<VariadicOption, string[]>> = {};
  let collecting: VariadicOption | undefined;

  for (const token of parsed.tokens) {
    if (token.kind === "option") {
      collecting = undefined;
      if ((token.name === "path" || token.name === "queues") && token.value !== undefined) {
        const list = variadic[token.name] ?? [];
        list.push(token.value);
        variadic[token.name] = list;
        // `--queues=a b` gives one queue, as in argparse; `--queues a b` gives two.
        collecting = token.inlineValue ? undefined : token.name;
      }
    } else if (token.kind === "positional") {
      if (collecting === undefined) {
        positionals.push(token.value);
      } else {
        variadic[collecting]?.push(token.value);
      }
    } else {
      collecting = undefined;
    }
  }

  return { values: parsed.values, positionals, variadic };
}

/** Parses a whole number in `range`, or returns `fallback` when the flag is absent. */
function parseCount(flag: string, value: string | undefined, fallback: number, range: CountRange): number {
  if (value === undefined) {
    return fallback;
  }

  // Digits only, so "1e3", "0x10" and " 4" are rejected. BigInt compares
  // values beyond Number.MAX_SAFE_INTEGER exactly.
  if (!/^\d+$/.test(value) || BigInt(value) < BigInt(range.minimum)) {
    throw new UsageError(`argument ${flag}: invalid value ${JSON.stringify(value)}: expected a whole number from ${range.minimum} to ${range.maximum}`);
  }
  if (BigInt(value) > BigInt(range.maximum)) {
    throw new UsageError(`argument ${flag}: invalid value ${JSON.stringify(value)}: the maximum is ${range.maximum}. ${range.maximumReason}`);
  }
  return Number(value);
}

function validateQueues(queues: readonly string[]): string[] {
  for (const queueName of queues) {
    try {
      validateQueueName(queueName);
    } catch (error) {
      if (error instanceof ConfigurationError) {
        throw new UsageError(`argument --queues/-Q: ${error.message}`);
      }
      throw error;
    }
  }
  return [...queues];
}
