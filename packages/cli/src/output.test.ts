import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { col, colourFor, Output, type Format } from './output.js';

function capture(format: Format, opts: { tty?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const text = { out: '', err: '' };
  const stream = (key: 'out' | 'err') => {
    const s = new PassThrough() as unknown as NodeJS.WriteStream;
    s.isTTY = opts.tty ?? false;
    s.write = ((chunk: string) => ((text[key] += chunk), true)) as never;
    return s;
  };
  return { out: new Output(format, { stdout: stream('out'), stderr: stream('err') }, opts.env ?? {}), text };
}

const COLUMNS = [col('ID', 'id'), col('STATE', 'state'), col('PCT', 'progress.percent', { wide: true })];
const PAGE = {
  items: [
    { id: 'tsk_1', state: 'running', progress: { percent: 40 } },
    { id: 'tsk_22', state: 'failed', progress: null },
  ],
  nextCursor: 'c1',
};

describe('Output', () => {
  it('prints a list as a table, wide columns only with -o wide, a further page hinted on stderr', () => {
    const t = capture('table');
    t.out.list(PAGE, COLUMNS);
    expect(t.text.out).toBe('ID      STATE\ntsk_1   running\ntsk_22  failed\n');
    expect(t.text.err).toBe('more items follow: --cursor c1 (or --all)\n');
    // A filtered page may be empty and have more after it: the hint still goes.
    const e = capture('table');
    e.out.list({ items: [], nextCursor: 'c2' }, COLUMNS);
    expect(e.text.err).toBe('more items follow: --cursor c2 (or --all)\n');
    const w = capture('wide');
    w.out.list({ ...PAGE, nextCursor: null }, COLUMNS);
    expect(w.text.out).toBe('ID      STATE    PCT\ntsk_1   running  40\ntsk_22  failed   -\n');
    expect(w.text.err).toBe('');
  });

  it('prints lists and objects as JSON or YAML, nothing on stderr', () => {
    const j = capture('json');
    j.out.list(PAGE, COLUMNS);
    expect(JSON.parse(j.text.out)).toEqual(PAGE);
    const y = capture('yaml');
    y.out.detail(PAGE.items[0]);
    expect(parseYaml(y.text.out)).toEqual(PAGE.items[0]);
    expect(j.text.err + y.text.err).toBe('');
  });

  it('shows one object in full, nested fields dotted', () => {
    const t = capture('table');
    t.out.detail({ id: 'tsk_1', progress: { percent: 40, message: null }, error: null, tags: ['a'] });
    expect(t.text.out).toBe(
      [
        'id:               tsk_1',
        'progress.percent: 40',
        'progress.message: -',
        'error:            -',
        'tags:             ["a"]',
        '',
      ].join('\n'),
    );
  });

  it('colours only a terminal, and never with NO_COLOR', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    expect(colourFor(tty, {})).toBe(true);
    expect(colourFor(tty, { NO_COLOR: '' })).toBe(false);
    expect(colourFor(tty, { TERM: 'dumb' })).toBe(false);
    expect(colourFor({ isTTY: false } as NodeJS.WriteStream, {})).toBe(false);
    const coloured = capture('table', { tty: true });
    coloured.out.list({ ...PAGE, nextCursor: null }, COLUMNS);
    expect(coloured.text.out).toContain('\x1b[');
    const plain = capture('table', { tty: true, env: { NO_COLOR: '1' } });
    plain.out.list({ ...PAGE, nextCursor: null }, COLUMNS);
    expect(plain.text.out).not.toContain('\x1b[');
  });
});
