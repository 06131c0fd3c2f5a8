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
