import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { eventRows } from '@cairn/test-harness/events';
import type { Store } from '../store/db.js';
import { TooManyError } from '../domain/errors.js';
import { storeFixture } from '../testing/store-fixture.js';
import { EventFeed, isProgress, type EventLog, type FeedItem, type Subscription } from './event-feed.js';

/** These streams see no task's progress: every item is an event of the log. */
function logEvent(item: FeedItem) {
  if (isProgress(item)) throw new Error(`unexpected progress of ${item.report.taskId}`);
  return item;
}

/** `n` events of `type` for `tenantId`, written straight into the log. */
async function writeEvents(store: Store, type: string, tenantId: string, n: number, data: string | null = null) {
  await store.db
    .insertInto('events')
    .values(eventRows(tenantId, type, n, data))
    .execute();
}

const TENANTS = ['t0', 't1', 't2'];
const LIMITS = { batch: 4, maxQueued: 8, maxQueuedBytes: 1 << 30, streams: { perToken: 1e6, perTenant: 1e6 } };
const POLL_MS = 2;
const IDLE_MS = 5;

/** One stream driven by the test: it pulls batches only when told to, like a client that reads. */
class Driver {
  readonly got: { id: number; tenantId: string }[] = [];
  queries = 0;
  done = false;
  private readonly abort = new AbortController();
  private gen: AsyncGenerator<FeedItem[]> | undefined;

  constructor(
    readonly tenantId: string | undefined,
    readonly sub: Subscription,
    private readonly als: AsyncLocalStorage<Driver>,
  ) {}

  /** Pulls up to `n` batches (an idle wait yields an empty one). */
  async read(n: number): Promise<void> {
    this.gen ??= this.sub.batches(this.abort.signal, IDLE_MS);
    for (let i = 0; i < n && !this.done; i++) {
      const r = await this.als.run(this, () => this.gen!.next());
      if (r.done) this.done = true;
      else this.got.push(...r.value.map(logEvent).map((e) => ({ id: e.id, tenantId: e.tenantId })));
    }
  }

  async leave(): Promise<void> {
    this.abort.abort();
    if (this.gen) await this.gen.return(undefined);
    else this.sub.close();
    this.done = true;
  }
}

type Command =
  | { kind: 'write'; tenant: number; n: number }
  | { kind: 'join'; who: number; resume: 'none' | 'zero' | 'before' | 'at' | 'past'; fraction: number; past: number }
  | { kind: 'read'; index: number; batches: number }
  | { kind: 'leave'; index: number }
  | { kind: 'wait' };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    tenant: fc.nat(TENANTS.length - 1),
    n: fc.integer({ min: 1, max: 14 }),
  }),
  fc.record({
    kind: fc.constant('join' as const),
    who: fc.nat(TENANTS.length), // TENANTS.length: an sp-admin, who sees every tenant
    resume: fc.constantFrom('none' as const, 'zero' as const, 'before' as const, 'at' as const, 'past' as const),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    past: fc.integer({ min: 1, max: 1_000_000_000 }),
  }),
  fc.record({ kind: fc.constant('read' as const), index: fc.nat(20), batches: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('leave' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('wait' as const) }),
);

describe.each(backends)('event feed, property-based against a real store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { events: repo } = f.repos;

  async function lastId(): Promise<number> {
    return repo.lastId();
  }

  const write = (tenantId: string, n: number) => writeEvents(f.store, 'prop.test', tenantId, n);

  /** What a subscriber must get: its tenant's ids in (start, upTo], straight from the table. */
  async function expected(tenantId: string | undefined, start: number, upTo: number): Promise<number[]> {
    let q = f.store.db.selectFrom('events').select('id').where('id', '>', start).where('id', '<=', upTo).orderBy('id');
    if (tenantId !== undefined) q = q.where('tenantId', '=', tenantId);
    return (await q.execute()).map((r) => r.id);
  }

  it('every subscriber gets exactly its tenant’s events, once and in order; every join costs a bounded number of queries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 30 }), async (commands) => {
        const als = new AsyncLocalStorage<Driver>();
        const log: EventLog = {
          lastId: () => {
            const d = als.getStore();
            if (d) d.queries++;
            return repo.lastId();
          },
          // A subscriber catching up reads through list; the shared poller through all.
          list: (after, limit, tenantId, upTo) => {
            const d = als.getStore();
            if (d) d.queries++;
            return repo.list(after, limit, tenantId, upTo);
          },
          // A join that resumes after an id first reads where the kept log begins.
          forgottenThrough: () => {
            const d = als.getStore();
            if (d) d.queries++;
            return repo.forgottenThrough();
          },
          progressAfter: (after, limit) => repo.progressAfter(after, limit),
          lastProgressId: () => repo.lastProgressId(),
          jobsOfTasks: (taskIds) => repo.jobsOfTasks(taskIds),
          all: (after, limit) => repo.all(after, limit),
          sees: (tenantId, row) => repo.sees(tenantId, row),
        };
        const feed = new EventFeed(log, POLL_MS, LIMITS);
        const drivers: Driver[] = [];
        const live = () => drivers.filter((d) => !d.done);
        try {
          for (const c of commands) {
            if (c.kind === 'write') await write(TENANTS[c.tenant]!, c.n);
            else if (c.kind === 'wait') await sleep(POLL_MS * 3);
            else if (c.kind === 'join') {
              const end = await lastId();
              const tenantId = TENANTS[c.who];
              const after = {
                none: undefined,
                zero: 0,
                before: Math.floor(c.fraction * end),
                at: end,
                past: end + c.past,
              }[c.resume];
              const holder = { queries: 0 } as Driver;
              const sub = await als.run(holder, () =>
                feed.open(after, tenantId, { tokenId: `tok${drivers.length}`, tenantId: tenantId ?? 'sp' }),
              );
              // Where it starts: as asked, but never past the end of the log, and the end without a position.
              expect(sub.start).toBe(after === undefined ? end : Math.min(after, end));
              const d = new Driver(tenantId, sub, als);
              d.queries = holder.queries;
              drivers.push(d);
            } else {
              const open = live();
              if (open.length === 0) continue;
              const d = open[c.index % open.length]!;
              if (c.kind === 'read') await d.read(c.batches);
              else await d.leave();
            }
          }
          expect(feed.size).toBe(live().length);

          // Every open subscriber reads to the end of the log as it now stands.
          const end = await lastId();
          for (const d of live()) {
            const want = await expected(d.tenantId, d.sub.start, end);
            const deadline = Date.now() + 10_000;
            while (d.got.length < want.length && Date.now() < deadline) await d.read(1);
          }
          for (const d of drivers) {
            const want = await expected(d.tenantId, d.sub.start, end);
            const ids = d.got.map((e) => e.id);
            if (d.done) expect(want.slice(0, ids.length)).toEqual(ids);
            else expect(ids).toEqual(want);
            const delivered = ids.length;
            expect(d.queries).toBeLessThanOrEqual(
              3 + Math.floor(delivered / LIMITS.batch) + Math.floor(delivered / LIMITS.maxQueued),
            );
          }
        } finally {
          for (const d of live()) await d.leave();
          feed.close();
        }
        expect(feed.size).toBe(0);
      }),
      { numRuns: backend === 'mysql' ? 15 : 40 },
    );
  }, 120_000);
});

describe.each(backends)('event feed bounds (%s)', (backend) => {
  const f = storeFixture(backend);
  const { events: repo } = f.repos;

  const write = (tenantId: string, n: number, data: string | null = null) =>
    writeEvents(f.store, 'bound.test', tenantId, n, data);

  it('counts streams against their token and their tenant; one over either is refused with 429 naming it; a closed one frees its place', async () => {
    const feed = new EventFeed(repo, POLL_MS, { streams: { perToken: 2, perTenant: 3 } });
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (err: unknown) => err,
      );
    try {
      const a1 = await feed.open(undefined, 't0', { tokenId: 'a', tenantId: 't0' });
      await feed.open(undefined, 't0', { tokenId: 'a', tenantId: 't0' });
      const overToken = await refusal(feed.open(undefined, 't0', { tokenId: 'a', tenantId: 't0' }));
      expect(overToken).toBeInstanceOf(TooManyError);
      expect(overToken).toMatchObject({
        status: 429,
        code: 'too_many_streams',
        extensions: { quota: 'streamsPerToken' },
      });
      expect((overToken as TooManyError).retryAfterS).toBeGreaterThanOrEqual(1);
      await feed.open(undefined, 't0', { tokenId: 'b', tenantId: 't0' });
      const overTenant = await refusal(feed.open(undefined, 't0', { tokenId: 'c', tenantId: 't0' }));
      expect(overTenant).toMatchObject({ status: 429, extensions: { quota: 'streamsPerTenant' } });
      // Another tenant (an sp-admin's own) is counted apart.
      await feed.open(undefined, undefined, { tokenId: 'admin', tenantId: 'sp' });
      expect(feed.held).toBe(4);
      a1.close();
      a1.close(); // twice frees one place, not two
      expect(feed.held).toBe(3);
      await feed.open(undefined, 't0', { tokenId: 'c', tenantId: 't0' });
      expect(await refusal(feed.open(undefined, 't0', { tokenId: 'c', tenantId: 't0' }))).toBeInstanceOf(TooManyError);
    } finally {
      feed.close();
    }
  });

  it('keeps at most maxQueuedBytes of events in memory for a stream that does not read, then reads them back from the store, each once and in order', async () => {
    const maxQueuedBytes = 10_000;
    const feed = new EventFeed(repo, POLL_MS, { batch: 200, maxQueuedBytes });
    const sub = await feed.open(undefined, 't1', { tokenId: 'x', tenantId: 't1' });
    const abort = new AbortController();
    const gen = sub.batches(abort.signal, IDLE_MS);
    try {
      const data = JSON.stringify({ pad: 'p'.repeat(1000) });
      const start = sub.start;
      for (let i = 0; i < 10; i++) {
        await write('t1', 5, data);
        await sleep(POLL_MS * 10);
        expect(feed.queuedBytes).toBeLessThanOrEqual(maxQueuedBytes);
      }
      const end = await repo.lastId();
      const got: number[] = [];
      while (got.length < 50) {
        const r = await gen.next();
        if (r.done) break;
        got.push(...r.value.map((e) => logEvent(e).id));
      }
      const want = (
        await f.store.db
          .selectFrom('events')
          .select('id')
          .where('id', '>', start)
          .where('id', '<=', end)
          .where('tenantId', '=', 't1')
          .orderBy('id')
          .execute()
      ).map((r) => r.id);
      expect(got).toEqual(want);
      expect(got).toHaveLength(50);
    } finally {
      abort.abort();
      await gen.return(undefined);
      feed.close();
    }
  });
});
