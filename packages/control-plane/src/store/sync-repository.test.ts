import type { Transaction } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';
import type { Database } from './schema.js';

describe.each(backends)('the pages of a paged sync listing (%s)', (backend) => {
  const f = storeFixture(backend);
  const { providerSyncs } = f.repos;
  const body = (page: number) => JSON.stringify([{ externalId: `p${page}`, createdAt: 0, sizeBytes: page }]);
  const page = (taskId: string, attempt: number, n: number, bad: string | null = null) => ({
    taskId,
    attempt,
    page: n,
    points: 1,
    bad,
    body: body(n),
  });
  const inTrx = <T>(fn: (trx: Transaction<Database>) => Promise<T>) => f.store.db.transaction().execute(fn);

  it('stores a page once, however often it is sent, and counts what an attempt holds', async () => {
    await inTrx(async (trx) => {
      for (const n of [0, 1, 2, 1, 0]) await providerSyncs.storePage(trx, page('tsk_a', 1, n));
      // A page sent again keeps what was stored first.
      await providerSyncs.storePage(trx, { ...page('tsk_a', 1, 2), points: 9, body: '[]' });
      await providerSyncs.storePage(trx, page('tsk_a', 2, 0));
    });
    await inTrx(async (trx) => {
      expect(await providerSyncs.storedPages(trx, 'tsk_a', 1)).toEqual({ pages: 3, lastPage: 2, points: 3, bad: null });
      expect(await providerSyncs.storedPages(trx, 'tsk_a', 2)).toEqual({ pages: 1, lastPage: 0, points: 1, bad: null });
      expect(await providerSyncs.storedPages(trx, 'tsk_none', 1)).toEqual({
        pages: 0,
        lastPage: -1,
        points: 0,
        bad: null,
      });
    });
  });

  it('names the first unreadable page', async () => {
    await inTrx(async (trx) => {
      await providerSyncs.storePage(trx, page('tsk_b', 1, 3, 'page 3: point 0: bad'));
      await providerSyncs.storePage(trx, page('tsk_b', 1, 1, 'page 1: point 4: bad'));
      await providerSyncs.storePage(trx, page('tsk_b', 1, 0));
      expect((await providerSyncs.storedPages(trx, 'tsk_b', 1)).bad).toBe('page 1: point 4: bad');
    });
  });

  it('reads an attempt’s pages in page order, batch by batch, and drops every attempt’s at the end', async () => {
    await inTrx(async (trx) => {
      for (const n of [4, 0, 3, 1, 2]) await providerSyncs.storePage(trx, page('tsk_c', 1, n));
      await providerSyncs.storePage(trx, page('tsk_c', 2, 0));
      const read: string[] = [];
      for await (const b of providerSyncs.pageBodies(trx, 'tsk_c', 1, 2)) read.push(b);
      expect(read).toEqual([0, 1, 2, 3, 4].map(body));
      await providerSyncs.dropPages(trx, 'tsk_c');
      expect(await providerSyncs.storedPages(trx, 'tsk_c', 1)).toMatchObject({ pages: 0 });
      expect(await providerSyncs.storedPages(trx, 'tsk_c', 2)).toMatchObject({ pages: 0 });
      expect(await providerSyncs.storedPages(trx, 'tsk_a', 1)).toMatchObject({ pages: 3 });
    });
  });
});
