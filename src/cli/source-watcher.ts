/**
 * `--watch`: reports batches of changed source files under a directory.
 *
 * With events (the default), each directory gets its own non-recursive
 * fs.watch() (one inotify watch on Linux). The watcher skips excluded
 * directories such as node_modules entirely, which fs.watch()'s
 * `recursive` option cannot do, and it adds and drops watches as
 * directories appear and disappear. With polling, the whole tree is
 * rescanned every POLL_INTERVAL_MS.
 *
 * An event only marks its directory for a rescan. Once a burst of events
 * settles (DEBOUNCE_MS), the marked directories are rescanned, and only
 * files whose content changed count (see SourceTree).
 */

import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";

import { getLogger } from "../logger.js";
import { SourceTree } from "./source-tree.js";
import { ALWAYS_WATCH_EXCLUDE, compilePatterns, DEFAULT_WATCH_INCLUDE } from "./watch-patterns.js";

/** Quiet time after the last file system event before the affected directories are rescanned, in ms. */
export const DEBOUNCE_MS = 200;

/** Maximum time a steady stream of events can delay a rescan, in ms. */
export const MAX_DEBOUNCE_MS = 2_000;

/** Time between two rescans of the whole tree with `--watch-use-polling`, in ms. */
export const POLL_INTERVAL_MS = 1_000;

/** Options of SourceWatcher.start(). */
export interface SourceWatcherOptions {
  /** Absolute path of the directory to watch. */
  readonly directory: string;
  /** Patterns added to DEFAULT_WATCH_INCLUDE. @defaultValue [] */
  readonly include?: readonly string[];
  /** Patterns added to ALWAYS_WATCH_EXCLUDE. @defaultValue [] */
  readonly exclude?: readonly string[];
  /** Rescan the tree periodically instead of using file system events. @defaultValue false */
  readonly polling?: boolean;
  /** Called with the relative paths of the files that changed in one batch. */
  readonly onChange: (files: readonly string[]) => void;
}

const logger = getLogger("melodramatiq.SourceWatcher");

/** Watches a directory tree for changed source files until close() is called. */
export class SourceWatcher {
  private readonly tree: SourceTree;
  private readonly watchers = new Map<string, FSWatcher>();
  private polling: boolean;
  private closed = false;
  private dirty = new Set<string>();
  private debounceTimer: NodeJS.Timeout | undefined;
  private firstEventAt = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> = Promise.resolve();

  private constructor(private readonly options: SourceWatcherOptions) {
    this.polling = options.polling === true;
    this.tree = new SourceTree({
      root: options.directory,
      include: compilePatterns([...DEFAULT_WATCH_INCLUDE, ...(options.include ?? [])]),
      exclude: compilePatterns([...ALWAYS_WATCH_EXCLUDE, ...(options.exclude ?? [])]),
      onDirectoryAdded: (relativePath) => {
        this.watchDirectory(relativePath);
      },
      onDirectoryRemoved: (relativePath) => {
        this.unwatchDirectory(relativePath);
      },
    });
  }

  /** Records the current content of the watched files, then starts watching. */
  static async start(options: SourceWatcherOptions): Promise<SourceWatcher> {
    const watcher = new SourceWatcher(options);
    await watcher.tree.scan("", { recursive: true, baseline: true });
    if (watcher.polling) {
      watcher.schedulePoll();
    }

    const { files, directories } = watcher.tree.size;
    const mode = watcher.polling ? `polling every ${POLL_INTERVAL_MS} ms` : "file system events";
    logger.info({ directory: options.directory }, `Watching ${files} file(s) in ${directories} director${directories === 1 ? "y" : "ies"} for changes (${mode}).`);
    return watcher;
  }

  /** Stops watching. Safe to call twice. */
  close(): void {
    this.closed = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.pollTimer);
    for (const watcher of this.watchers.values()) {
      watcher.close();
    }
    this.watchers.clear();
  }

  private watchDirectory(relativePath: string): void {
    if (this.polling || this.closed || this.watchers.has(relativePath)) {
      return;
    }

    let watcher: FSWatcher;
    try {
      watcher = watch(join(this.options.directory, relativePath), { persistent: false }, () => {
        this.onEvent(relativePath);
      });
    } catch (error) {
      this.switchToPolling(error, relativePath);
      return;
    }

    watcher.on("error", (error) => {
      // Typically the directory was deleted; the parent's rescan drops it from the snapshot.
      logger.debug({ err: error, directory: relativePath }, `Stopped watching '${relativePath}': ${error.message}`);
      this.unwatchDirectory(relativePath);
      this.onEvent(parentOf(relativePath));
    });
    this.watchers.set(relativePath, watcher);
  }

  private unwatchDirectory(relativePath: string): void {
    this.watchers.get(relativePath)?.close();
    this.watchers.delete(relativePath);
  }

  /** Falls back to polling when the system refuses more watches, e.g. at the inotify limit (ENOSPC) or the open file limit (EMFILE). */
  private switchToPolling(error: unknown, relativePath: string): void {
    logger.error(
      { err: error, directory: relativePath },
      `Failed to watch '${relativePath || "."}' for changes; falling back to polling every ${POLL_INTERVAL_MS} ms. ` +
        "Exclude large directories with -x, raise fs.inotify.max_user_watches, or pass --watch-use-polling.",
    );
    this.polling = true;
    for (const watcher of this.watchers.values()) {
      watcher.close();
    }
    this.watchers.clear();
    this.schedulePoll();
  }

  private onEvent(relativePath: string): void {
    if (this.closed || this.polling) {
      return;
    }

    const now = Date.now();
    if (this.dirty.size === 0) {
      this.firstEventAt = now;
    }
    this.dirty.add(relativePath);

    clearTimeout(this.debounceTimer);
    const delay = Math.max(0, Math.min(DEBOUNCE_MS, this.firstEventAt + MAX_DEBOUNCE_MS - now));
    this.debounceTimer = setTimeout(() => {
      this.enqueueScan(() => this.rescanDirty());
    }, delay);
    this.debounceTimer.unref();
  }

  private async rescanDirty(): Promise<string[]> {
    const directories = [...this.dirty];
    this.dirty = new Set();

    const changes: string[] = [];
    for (const directory of directories) {
      if (this.tree.hasDirectory(directory)) {
        changes.push(...(await this.tree.scan(directory)));
      }
    }
    return changes;
  }

  private schedulePoll(): void {
    // One timer at a time, even when the fallback to polling happens during the first scan.
    clearTimeout(this.pollTimer);
    if (this.closed) {
      return;
    }
    this.pollTimer = setTimeout(() => {
      this.enqueueScan(() => this.tree.scan("", { recursive: true }));
      void this.scanning.then(() => {
        this.schedulePoll();
      });
    }, POLL_INTERVAL_MS);
    this.pollTimer.unref();
  }

  /** Runs scans one at a time, so two rescans never update the snapshot at once. */
  private enqueueScan(scan: () => Promise<string[]>): void {
    this.scanning = this.scanning.then(async () => {
      if (this.closed) {
        return;
      }
      try {
        const changes = [...new Set(await scan())].sort();
        if (changes.length > 0 && !this.closed) {
          this.options.onChange(changes);
        }
      } catch (error) {
        logger.error({ err: error }, "Failed to scan the watched directory for changes; the next change triggers another scan.");
      }
    });
  }
}

function parentOf(relativePath: string): string {
  const slash = relativePath.lastIndexOf("/");
  return slash === -1 ? "" : relativePath.slice(0, slash);
}
