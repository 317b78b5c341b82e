import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_PAGE_EVENT } from '@cairn/proto/vocabulary';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { createLogger } from '../logger.js';
import { Spool } from '../spool/spool.js';
import { listingPages, pageListing } from './sync-pages.js';
import { createTaskContext } from './task-context.js';

const point = (i: number) => ({ externalId: `p${i}`, createdAt: '2026-01-01T00:00:00Z', sizeBytes: i });

describe('listingPages', () => {
  it('cuts a listing into pages of at most the byte limit, in order, every point once', () => {
    const points = Array.from({ length: 1000 }, (_, i) => point(i));
    const pages = [...listingPages(points, 2000)];
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(Buffer.byteLength(p.body)).toBeLessThanOrEqual(2000);
    expect(pages.flatMap((p) => JSON.parse(p.body) as unknown[])).toEqual(points);
    expect(pages.reduce((n, p) => n + p.points, 0)).toBe(1000);
  });

  it('puts a point larger than a page on a page of its own, and each point once as JSON', () => {
    expect([...listingPages([1, 'x'.repeat(50), 2], 10)].map((p) => p.points)).toEqual([1, 1, 1]);
    expect([...listingPages([undefined, { a: undefined }], 100)]).toEqual([{ body: '[null,{}]', points: 2 }]);
  });
});

describe('pageListing', () => {
  const spool = () => Spool.open(mkdtempSync(join(tmpdir(), 'pages-')), { clock: systemClock });
  const task = { taskId: 't1', attempt: 3 };
  const signal = new AbortController().signal;

  it('leaves a listing that fits one page, no array, or one that is no JSON to the result, as before', async () => {
    const s = spool();
    const parts = { task, spool: s, clock: systemClock, signal, maxBytes: 1000 };
    expect(await pageListing([point(1)], parts)).toBeUndefined();
    expect(await pageListing({ points: [] }, parts)).toBeUndefined();
    const cyclic: Record<string, unknown>[] = Array.from({ length: 100 }, (_, i) => point(i));
    cyclic[90]!['self'] = cyclic[90];
    expect(await pageListing(cyclic, parts)).toBeUndefined();
    expect(await pageListing([1n, 2n], parts)).toBeUndefined();
    expect(s.size).toBeGreaterThan(0); // the pages before the cycle went out: the failed result drops them
  });

  it('spools the pages of a larger one as events, and a result that counts them', async () => {
    const s = spool();
    const points = Array.from({ length: 300 }, (_, i) => point(i));
    const out = await pageListing(points, { task, spool: s, clock: systemClock, signal, maxBytes: 1000, window: 1000 });
    await s.flushed();
    const spooled = s
      .pending()
      .map((r) => r.body as { type: string; taskId: string; attempt: number; dataJson: string });
    expect(spooled.every((e) => e.type === SYNC_PAGE_EVENT && e.taskId === 't1' && e.attempt === 3)).toBe(true);
    const pages = spooled.map((e) => JSON.parse(e.dataJson) as { page: number; points: unknown[] });
    expect(pages.map((p) => p.page)).toEqual(pages.map((_, i) => i));
    expect(pages.flatMap((p) => p.points)).toEqual(points);
    expect(out).toEqual({ ok: { outputJson: JSON.stringify({ cairnPages: pages.length, points: 300 }) } });
  });

  it('holds at most `window` pages unacknowledged, and stops with CANCELLED on a cancel', async () => {
    const s = spool();
    const ctl = new AbortController();
    const points = Array.from({ length: 300 }, (_, i) => point(i));
    const run = pageListing(points, {
      task,
      spool: s,
      clock: systemClock,
      signal: ctl.signal,
      maxBytes: 1000,
      window: 4,
      pollMs: 1,
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(s.size).toBe(4);
    s.ack(
      s
        .pending()
        .map((r) => r.seq)
        .slice(0, 2),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(s.size).toBe(4);
    ctl.abort(new Error('cancelled by the operator'));
    expect(await run).toEqual({ error: { code: 'CANCELLED', message: 'cancelled by the operator', retryable: false } });
  });
});

describe('a plugin and the pages', () => {
  it('cannot send a page of its own: an event of the page type is dropped, others are spooled', () => {
    const spool = Spool.open(mkdtempSync(join(tmpdir(), 'pages-')), { clock: systemClock });
    const { context } = createTaskContext({
      task: { taskId: 't1', attempt: 1 },
      signal: new AbortController().signal,
      host: { roots: [], denied: [] },
      spool,
      clock: systemClock,
      log: createLogger('error'),
    });
    context.event({ type: SYNC_PAGE_EVENT, message: '', data: { page: 0, points: [point(1)] } });
    expect(spool.size).toBe(0);
    context.event({ type: 'plugin.note', message: 'hello' });
    expect(spool.size).toBe(1);
  });
});
