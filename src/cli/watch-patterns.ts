/**
 * The glob patterns of `--watch-include` and `--watch-exclude`. A pattern
 * is matched against a path relative to the watched directory, with `/`
 * separators:
 * - a pattern without `/` matches the base name at any depth
 *   (`*.ts`, `node_modules`), as in .gitignore;
 * - a pattern with `/` matches the whole relative path (`src/*.ts`);
 * - `*` matches within one path segment, `?` one character, `[abc]` and
 *   `[!abc]` one character of a set, `{ts,js}` one of the alternatives;
 * - `**` matches across directories: `**\/` is zero or more directories,
 *   a trailing `/**` everything below, and `**.ts` any path ending in `.ts`.
 * `*` also matches a leading dot, unlike in a shell.
 */

/** Files watched when no `--watch-include` is given; `-i` patterns add to these. */
export const DEFAULT_WATCH_INCLUDE: readonly string[] = ["**/*.ts", "**/*.mts", "**/*.cts", "**/*.js", "**/*.mjs", "**/*.cjs", "**/*.json"];

/**
 * Files and directories that are never watched: dependencies, Git's data,
 * and the temporary and backup files of vim, emacs and JetBrains IDEs.
 */
export const ALWAYS_WATCH_EXCLUDE: readonly string[] = [
  "node_modules",
  ".git",
  ".#*",
  "#*#",
  "*~",
  "*.swp",
  "*.swo",
  "*.swx",
  "4913",
  "*___jb_tmp___",
  "*___jb_old___",
];

/** Tests a relative path (with `/` separators) against a set of patterns. */
export type PathMatcher = (relativePath: string) => boolean;

/** Returns a matcher that accepts a path when any of `patterns` matches it. */
export function compilePatterns(patterns: readonly string[]): PathMatcher {
  const compiled = patterns.map(compilePattern);
  return (relativePath) => compiled.some((matches) => matches(relativePath));
}

function compilePattern(pattern: string): PathMatcher {
  const normalized = pattern.replace(/\\/g, "/").replace(/^\.\//, "").replace(/^\//, "");
  const regex = new RegExp(`^${globToRegexSource(normalized, hasBalancedBraces(normalized))}$`);
  if (normalized.includes("/")) {
    return (relativePath) => regex.test(relativePath);
  }
  return (relativePath) => regex.test(relativePath.slice(relativePath.lastIndexOf("/") + 1));
}

/** Translates one glob to a regular expression source, character by character. Unbalanced braces are taken literally. */
function globToRegexSource(glob: string, bracesEnabled: boolean): string {
  let source = "";
  let braceDepth = 0;

  for (let index = 0; index < glob.length; index += 1) {
    const char = glob.charAt(index);
    if (char === "*" && glob[index + 1] === "*") {
      const atSegmentStart = index === 0 || glob[index - 1] === "/";
      const followedBySlash = glob[index + 2] === "/";
      const atEnd = index + 2 === glob.length;
      if (atSegmentStart && followedBySlash) {
        source += "(?:.*/)?";
        index += 2;
      } else if (atEnd && source.endsWith("/")) {
        // `dir/**` also matches `dir` itself, so excluding it skips the whole directory.
        source = `${source.slice(0, -1)}(?:/.*)?`;
        index += 1;
      } else {
        source += ".*";
        index += 1;
      }
    } else if (char === "*") {
      source += "[^/]*";
    } else if (char === "?") {
      source += "[^/]";
    } else if (char === "[") {
      const close = glob.indexOf("]", index + 2);
      if (close === -1) {
        source += "\\[";
      } else {
        const body = glob.slice(index + 1, close).replace(/\\/g, "\\\\");
        source += body.startsWith("!") ? `[^${body.slice(1)}]` : `[${body}]`;
        index = close;
      }
    } else if (char === "{" && bracesEnabled) {
      braceDepth += 1;
      source += "(?:";
    } else if (char === "}" && braceDepth > 0) {
      braceDepth -= 1;
      source += ")";
    } else if (char === "," && braceDepth > 0) {
      source += "|";
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
  }

  return source;
}

function hasBalancedBraces(glob: string): boolean {
  let depth = 0;
  for (const char of glob) {
    if (char === "{") {
      depth += 1;
    } else if (char === "}") {
      depth -= 1;
    }
    if (depth < 0) {
      return false;
    }
  }
  return depth === 0;
}
