/**
 * The rows the benchmarks produce and the one table `npm run bench` prints. A row is a figure, the
 * baseline measured in the same run, their ratio and the target; targets are reported, never enforced.
 */

/** A bound on a row: either on the figure itself or on its ratio to the baseline. */
export interface Target {
  readonly on: 'value' | 'ratio';
  readonly bound: 'atLeast' | 'atMost';
  readonly limit: number;
}

export interface Quantity {
  readonly value: number;
  readonly unit: string;
}

export interface MeasuredRow {
  readonly figure: string;
  readonly measured: Quantity;
  /** The same quantity for the baseline, measured in the same run; `label` says what it is. */
  readonly baseline?: Quantity & { readonly label: string };
  readonly target?: Target;
  /** What bounds the figure, with the numbers that show it. */
  readonly limitedBy?: string;
}

/** A row that could not be measured in this run, with the reason instead of a number. */
export interface UnmeasuredRow {
  readonly figure: string;
  readonly notMeasured: string;
  readonly target?: Target;
}

export type Row = MeasuredRow | UnmeasuredRow;

export const isMeasured = (row: Row): row is MeasuredRow => 'measured' in row;

/** Figure divided by baseline, when the row has a baseline. */
export function ratioOf(row: MeasuredRow): number | undefined {
  return row.baseline && row.baseline.value !== 0 ? row.measured.value / row.baseline.value : undefined;
}

/** Whether a measured row meets its target; `undefined` when it has none or lacks what it bounds. */
export function meetsTarget(row: MeasuredRow): boolean | undefined {
  if (!row.target) return undefined;
  const subject = row.target.on === 'ratio' ? ratioOf(row) : row.measured.value;
  if (subject === undefined) return undefined;
  return row.target.bound === 'atLeast' ? subject >= row.target.limit : subject <= row.target.limit;
}

/** Three significant digits, thousands as `k`, so figures of very different sizes stay readable. */
export function formatNumber(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 10_000) return `${formatNumber(value / 1000)}k`;
  return Number(value.toPrecision(3)).toString();
}

const formatQuantity = (quantity: Quantity): string => `${formatNumber(quantity.value)} ${quantity.unit}`.trim();

function formatTarget(target: Target | undefined, unit: string): string {
  if (!target) return '';
  const sign = target.bound === 'atLeast' ? '≥' : '≤';
  return target.on === 'ratio' ? `ratio ${sign} ${target.limit}` : `${sign} ${formatNumber(target.limit)} ${unit}`.trim();
}

/** One row as the cells of the printed table. */
function cells(row: Row): string[] {
  if (!isMeasured(row)) return [row.figure, `not measured: ${row.notMeasured}`, '', '', formatTarget(row.target, ''), ''];
  const ratio = ratioOf(row);
  const met = meetsTarget(row);
  return [
    row.figure,
    formatQuantity(row.measured),
    row.baseline ? `${formatQuantity(row.baseline)} (${row.baseline.label})` : '',
    ratio === undefined ? '' : formatNumber(ratio),
    formatTarget(row.target, row.measured.unit),
    met === undefined ? '' : met ? 'yes' : 'NO',
  ];
}

const HEADER = ['figure', 'value', 'baseline', 'ratio', 'target', 'met?'];

/** The rows as a Markdown table (readable in a terminal, pasted as is into docs/performance.md). */
export function formatTable(rows: readonly Row[]): string {
  const table = [HEADER, ...rows.map(cells)].map((line) => line.map((cell) => cell.replaceAll('|', '\\|')));
  const widths = HEADER.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
  const render = (line: string[]) => `| ${line.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [render(table[0]!), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...table.slice(1).map(render)].join('\n');
}

/** The "limited by" notes, one line per row that has one, named by its figure. */
export function formatNotes(rows: readonly Row[]): string {
  return rows
    .flatMap((row) => (isMeasured(row) && row.limitedBy ? [`- ${row.figure}: ${row.limitedBy}`] : []))
    .join('\n');
}
