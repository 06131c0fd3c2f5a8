import { distance } from 'fastest-levenshtein';

/**
 * How the CLI talks to the terminal: results on stdout (tables, or JSON for scripts), progress and
 * errors on stderr, so `--json` output stays clean to pipe.
 */

/** The command line is wrong; exit code 2 and a pointer to `--help`. */
export class UsageError extends Error {}

/** Prints rows as an aligned table with a header; cells are cut at `maxCellWidth`. */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[], maxCellWidth = 60): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cut = (cell: string) => (cell.length > maxCellWidth ? `${cell.slice(0, maxCellWidth - 1)}…` : cell);
  const cells = [headers, ...rows].map((row) => row.map(cut));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  for (const row of cells) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
}

/** Prints a value as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A progress line on stderr, rewritten in place on a terminal and left out elsewhere. */
export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${text}`);
}

/** Ends a progress line. */
export function progressDone(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
}

/**
 * Names among `known` that a mistyped `name` was probably meant to be, nearest first, at most
 * three: those containing it (`heartrate` → `daily.data.heartrate.created`), then those a few edits
 * away (Levenshtein distance up to a third of the name).
 */
export function closeMatches(name: string, known: readonly string[]): string[] {
  const wanted = name.toLowerCase();
  const containing = known.filter((candidate) => wanted.length >= 3 && candidate.toLowerCase().includes(wanted));
  const near = known
    .map((candidate) => ({ candidate, edits: distance(wanted, candidate.toLowerCase()) }))
    .filter(({ candidate, edits }) => edits <= Math.max(2, Math.floor(wanted.length / 3)) && !containing.includes(candidate))
    .sort((a, b) => a.edits - b.edits)
    .map(({ candidate }) => candidate);
  return [...containing, ...near].slice(0, 3);
}

/** `Did you mean a, b?` for an unknown name, or nothing when no name is close. */
export function didYouMean(name: string, known: readonly string[]): string {
  return suggesting(closeMatches(name, known));
}

/** ` Did you mean a, b?` naming `matches`, or nothing for none. */
export function suggesting(matches: readonly string[]): string {
  return matches.length > 0 ? ` Did you mean ${matches.join(', ')}?` : '';
}
