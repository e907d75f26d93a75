/**
 * A snapshot of the watched source files: size, times and a SHA-1 of the
 * content of each file that the include patterns select. Rescanning a
 * directory reports the files whose content changed, appeared or
 * disappeared. A file whose times changed but whose content did not (e.g.
 * after `touch`) is no change.
 */

import { createHash } from "node:crypto";
import type { Dirent } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

import type { PathMatcher } from "./watch-patterns.js";

interface FileState {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly hash: string;
}

interface DirectoryState {
  readonly files: Map<string, FileState>;
  readonly subdirectories: Set<string>;
}

/** Options of SourceTree. */
export interface SourceTreeOptions {
  /** Absolute path of the watched directory. */
  readonly root: string;
  readonly include: PathMatcher;
  readonly exclude: PathMatcher;
  /** Called with the relative path ("" for the root) of each directory that enters the snapshot. */
  readonly onDirectoryAdded?: (relativePath: string) => void;
  /** Called with the relative path of each directory that leaves the snapshot. */
  readonly onDirectoryRemoved?: (relativePath: string) => void;
}

/** How far a rescan goes. */
export interface ScanOptions {
  /** Rescan known subdirectories too; new subdirectories are always scanned. @defaultValue false */
  readonly recursive?: boolean;
  /** Record files without reporting them as new, for the first scan. @defaultValue false */
  readonly baseline?: boolean;
}

/** The watched files under one directory. Relative paths use `/` separators. */
export class SourceTree {
  private readonly directories = new Map<string, DirectoryState>();

  constructor(private readonly options: SourceTreeOptions) {}

  /** Number of files and directories in the snapshot. */
  get size(): { readonly files: number; readonly directories: number } {
    let files = 0;
    for (const directory of this.directories.values()) {
      files += directory.files.size;
    }
    return { files, directories: this.directories.size };
  }

  /** Reports whether `relativePath` is a directory in the snapshot. */
  hasDirectory(relativePath: string): boolean {
    return this.directories.has(relativePath);
  }

  /**
   * Rescans the directory at `relativePath` and returns the relative paths
   * of the included files that changed, appeared or disappeared there.
   * A directory that no longer exists leaves the snapshot with its files.
   */
  async scan(relativePath: string, options: ScanOptions = {}): Promise<string[]> {
    const changes: string[] = [];
    await this.scanDirectory(relativePath, options, changes);
    return changes;
  }

  private async scanDirectory(relativePath: string, options: ScanOptions, changes: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.options.root, relativePath), { withFileTypes: true });
    } catch {
      // Deleted or no longer readable: everything below it is gone.
      this.removeDirectory(relativePath, changes);
      return;
    }

    let state = this.directories.get(relativePath);
    if (state === undefined) {
      state = { files: new Map(), subdirectories: new Set() };
      this.directories.set(relativePath, state);
      this.options.onDirectoryAdded?.(relativePath);
    }

    const seenFiles = new Set<string>();
    const seenDirectories = new Set<string>();
    for (const entry of entries) {
      const childPath = relativePath === "" ? entry.name : `${relativePath}/${entry.name}`;
      if (this.options.exclude(childPath)) {
        continue;
      }

      if (entry.isDirectory()) {
        seenDirectories.add(entry.name);
        state.subdirectories.add(entry.name);
        if (options.recursive === true || !this.directories.has(childPath)) {
          await this.scanDirectory(childPath, options, changes);
        }
      } else if ((entry.isFile() || entry.isSymbolicLink()) && this.options.include(childPath)) {
        seenFiles.add(entry.name);
        if (await this.checkFile(state, entry.name, childPath, options.baseline === true)) {
          changes.push(childPath);
        }
      }
    }

    for (const name of state.files.keys()) {
      if (!seenFiles.has(name)) {
        state.files.delete(name);
        changes.push(relativePath === "" ? name : `${relativePath}/${name}`);
      }
    }
    for (const name of state.subdirectories) {
      if (!seenDirectories.has(name)) {
        state.subdirectories.delete(name);
        this.removeDirectory(relativePath === "" ? name : `${relativePath}/${name}`, changes);
      }
    }
  }

  /** Updates the state of one file; returns whether its content changed, it appeared, or it vanished. */
  private async checkFile(directory: DirectoryState, name: string, relativePath: string, baseline: boolean): Promise<boolean> {
    const known = directory.files.get(name);
    const path = join(this.options.root, relativePath);
    let current: FileState;
    try {
      const stats = await stat(path);
      if (!stats.isFile()) {
        return directory.files.delete(name);
      }
      if (known !== undefined && known.size === stats.size && known.mtimeMs === stats.mtimeMs && known.ctimeMs === stats.ctimeMs && known.ino === stats.ino) {
        return false;
      }
      const hash = createHash("sha1").update(await readFile(path)).digest("hex");
      current = { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, hash };
    } catch {
      // Removed between readdir and stat, or a dangling symlink such as an emacs lock file.
      return directory.files.delete(name);
    }

    directory.files.set(name, current);
    if (known === undefined) {
      return !baseline;
    }
    return known.hash !== current.hash;
  }

  /** Drops a directory and everything below it, adding its files to `changes`. */
  private removeDirectory(relativePath: string, changes: string[]): void {
    const state = this.directories.get(relativePath);
    if (state === undefined) {
      return;
    }

    this.directories.delete(relativePath);
    this.options.onDirectoryRemoved?.(relativePath);
    for (const name of state.files.keys()) {
      changes.push(relativePath === "" ? name : `${relativePath}/${name}`);
    }
    for (const name of state.subdirectories) {
      this.removeDirectory(relativePath === "" ? name : `${relativePath}/${name}`, changes);
    }
  }
}
