/**
 * What a command prints: data on stdout in the format asked (`-o table|wide|json|yaml`), messages
 * on stderr. Colour only on a terminal and never with NO_COLOR.
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import { stringify } from 'yaml';

export const FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

/** A column of a table: `wide` columns show only with `-o wide`. */
export interface Column {
  header: string;
  get: (row: Record<string, unknown>) => unknown;
  wide?: boolean;
}

/** A column reading a field (dotted for nested: `progress.percent`). */
export function col(header: string, field: string, opts: { wide?: boolean } = {}): Column {
  return { header, get: (row) => pick(row, field), ...opts };
}

function pick(row: Record<string, unknown>, field: string): unknown {
  let v: unknown = row;
  for (const part of field.split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** Whether to colour what goes to `stream`: a terminal, NO_COLOR unset (any value turns it off), TERM not dumb. */
export function colourFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && env['NO_COLOR'] === undefined && env['TERM'] !== 'dumb';
}

export type Colors = ReturnType<typeof pc.createColors>;

export interface Streams {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

const GOOD = new Set(['succeeded', 'connected', 'true']);
const BAD = new Set(['failed', 'lost', 'cancelled', 'disconnected']);

/** A cell's text: `-` for nothing, JSON for objects and lists. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export class Output {
  readonly colors: Colors;
  readonly errColors: Colors;

  constructor(
    readonly format: Format,
    readonly streams: Streams = { stdout: process.stdout, stderr: process.stderr },
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.colors = pc.createColors(colourFor(streams.stdout, env));
    this.errColors = pc.createColors(colourFor(streams.stderr, env));
  }

  get structured(): boolean {
    return this.format === 'json' || this.format === 'yaml';
  }

  /** Data as JSON (indented) or YAML. */
  data(value: unknown): void {
    this.streams.stdout.write(this.format === 'yaml' ? stringify(value) : `${JSON.stringify(value, null, 2)}\n`);
  }

  /** A list: rows of a table, or `{items, nextCursor}`; a further page is hinted on stderr. */
  list(page: { items: unknown[]; nextCursor: string | null }, columns: Column[], more?: string): void {
    if (this.structured) return this.data(page);
    this.table(page.items as Record<string, unknown>[], columns);
    // A filtered page may be short, or empty, with more after it: the hint goes with any cursor.
    if (page.nextCursor !== null) this.note(`more items follow: ${more ?? `--cursor ${page.nextCursor}`} (or --all)`);
  }

  /** One object as a one-row table (table, wide) or the object (json, yaml). */
  one(value: unknown, columns: Column[]): void {
    if (this.structured) return this.data(value);
    this.table([value as Record<string, unknown>], columns);
  }

  /** One object in full: every field on its own line (table, wide), or the object. */
  detail(value: unknown): void {
    if (this.structured) return this.data(value);
    const rows: [string, string][] = [];
    const walk = (obj: Record<string, unknown>, prefix: string) => {
      for (const [k, v] of Object.entries(obj)) {
        if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0)
          walk(v as Record<string, unknown>, `${prefix}${k}.`);
        else rows.push([`${prefix}${k}`, cell(v)]);
      }
    };
    walk(value as Record<string, unknown>, '');
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) this.streams.stdout.write(`${this.colors.bold(`${k}:`.padEnd(width + 2))}${v}\n`);
  }

  table(rows: Record<string, unknown>[], columns: Column[]): void {
    const shown = columns.filter((c) => this.format === 'wide' || !c.wide);
    const t = new Table({
      head: shown.map((c) => this.colors.bold(c.header)),
      chars: {
        top: '',
        'top-mid': '',
        'top-left': '',
        'top-right': '',
        bottom: '',
        'bottom-mid': '',
        'bottom-left': '',
        'bottom-right': '',
        left: '',
        'left-mid': '',
        mid: '',
        'mid-mid': '',
        right: '',
        'right-mid': '',
        middle: '  ',
      },
      style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
    });
    for (const row of rows) t.push(shown.map((c) => this.paint(cell(c.get(row)))));
    const text = t
      .toString()
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n');
    this.streams.stdout.write(`${text}\n`);
  }

  /** A state word coloured by what it means. */
  paint(text: string): string {
    if (GOOD.has(text)) return this.colors.green(text);
    if (BAD.has(text)) return this.colors.red(text);
    return text;
  }

  /** A message for the person: stderr. */
  note(line: string): void {
    this.streams.stderr.write(`${line}\n`);
  }
}
