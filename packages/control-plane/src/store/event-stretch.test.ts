import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { FANNED_OUT_PREFIX } from '../domain/event-view.js';
import { SCANNED_ROWS } from './page.js';
import type { EventFilter, EventRead } from './event-repository.js';
import { storeFixture } from '../testing/store-fixture.js';

/** The tenant's events: three times what one filtered read looks at. */
const MANY = 3 * SCANNED_ROWS;

/**
 * A read of the event log that filters on what its index does not hold (a stream following one
 * instance, one task, one job or a type) looks at a bounded stretch of the tenant's events,
 * however many it has: a read may answer fewer rows than asked, or none, and says where the next
 * one starts; the walk still finds every match once, in order. Before, one read of a stream
 * following a quiet instance went through every event of its tenant.
 */
describe.each(backends)('a filtered read of the event log (%s)', (backend) => {
  let watching = false;
  const statements: string[] = [];
  const f = storeFixture(backend, { observe: (text) => void (watching && statements.push(text)) });
  const { events } = f.repos;
  let tenantId: string;
  /** The events of the instance `ins_needle` (type `needle.found`): the first, one in the middle, the last. */
  let needles: number[];
  let head: number;

  beforeAll(async () => {
    tenantId = (await f.repos.tenants.create('acme')).id;
    const other = (await f.repos.tenants.create('other')).id;
    const rows = [];
    for (let i = 0; i < MANY; i++) {
      const needle = i === 0 || i === MANY / 2 || i === MANY - 1;
      rows.push({
        tenantId,
        type: needle ? 'needle.found' : 'task.progress',
        at: i,
        message: '',
        taskId: null,
        instanceId: needle ? 'ins_needle' : 'ins_hay',
        jobId: null,
        agentId: null,
        data: null,
        sourceAgentId: null,
        sourceSeq: null,
      });
      // Another tenant's events between them, none of them its concern.
      if (i % 10 === 0) rows.push({ ...rows[rows.length - 1]!, tenantId: other, type: 'needle.found' });
    }
    for (let i = 0; i < rows.length; i += 250)
      await f.store.db
        .insertInto('events')
        .values(rows.slice(i, i + 250))
        .execute();
    const mine = await f.store.db
      .selectFrom('events')
      .select(['id', 'type'])
      .where('tenantId', '=', tenantId)
      .orderBy('id')
      .execute();
    needles = mine.filter((e) => e.type === 'needle.found').map((e) => e.id);
    head = (await f.store.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst())!.id!;
  });

  /** Every read of a stream's catch-up to `head`, each from where the one before ended. */
  async function walk(filter: EventFilter, limit = 50): Promise<EventRead[]> {
    const reads: EventRead[] = [];
    let position = 0;
    while (position < head && reads.length < 100) {
      const read = await events.list(position, limit, tenantId, head, filter);
      expect(read.through, 'a read moves on').toBeGreaterThan(position);
      reads.push(read);
      position = read.through;
    }
    return reads;
  }

  it.each<[string, EventFilter]>([
    ['an instance', { instanceId: 'ins_needle' }],
    ['a type', { typePrefix: 'needle.' }],
    ['a task', { taskId: 'tsk_nothing' }],
  ])('following %s finds every match once, a bounded stretch a read', async (name, filter) => {
    const reads = await walk(filter);
    const found = reads.flatMap((r) => r.rows.map((e) => Number(e.id)));
    expect(found).toEqual(name === 'a task' ? [] : needles);
    // Each stretch of SCANNED_ROWS events held at most one match, and was one read.
    expect(Math.max(...reads.map((r) => r.rows.length))).toBeLessThanOrEqual(1);
    expect(reads.length).toBeGreaterThanOrEqual(MANY / SCANNED_ROWS);
    expect(reads.length).toBeLessThanOrEqual(MANY / SCANNED_ROWS + 1);
    expect(reads.at(-1)!.through).toBe(head);
  });

  it('bounds each statement of a filtered read by one upper id', async () => {
    // With two (the stretch's end and the stream's head), SQLite ranged its index by the first
    // and filtered by the second: each read went to the head, 28 ms at 200,000 events.
    statements.length = 0;
    watching = true;
    await events.list(0, 50, tenantId, head, { instanceId: 'ins_needle' });
    watching = false;
    expect(statements).toHaveLength(2);
    for (const text of statements) expect(text.match(/["`]id["`] <= \?/g), text).toHaveLength(1);
  });

  it('a read that fills its limit ends at its last row; one with no filter is not cut short', async () => {
    const two = await walk({ instanceId: 'ins_needle' }, 2);
    expect(two.flatMap((r) => r.rows.map((e) => Number(e.id)))).toEqual(needles);
    const full = await events.list(0, 50, tenantId, head, { typePrefix: 'task.' });
    expect(full.rows).toHaveLength(50);
    expect(full.through).toBe(Number(full.rows[49]!.id));
    const plain = await events.list(0, 500, tenantId);
    expect(plain.rows).toHaveLength(500);
    expect(plain.through).toBe(Number(plain.rows[499]!.id));
  });

  it("the sp-admin's read past other tenants' copies of a fanned-out event is bounded too", async () => {
    const from = head;
    const copies = Array.from({ length: 2 * SCANNED_ROWS }, (_, i) => ({
      tenantId: i % 2 === 0 ? tenantId : f.providerTenant,
      type: `${FANNED_OUT_PREFIX}enabled`,
      at: i,
      message: '',
      taskId: null,
      instanceId: null,
      jobId: null,
      agentId: null,
      data: null,
      sourceAgentId: null,
      sourceSeq: null,
    }));
    for (let i = 0; i < copies.length; i += 250)
      await f.store.db
        .insertInto('events')
        .values(copies.slice(i, i + 250))
        .execute();
    // The sp-admin sees its own copy (every other row) and none of acme's: 1,000 of the first
    // stretch's 2,000 rows, the first 50 of them here.
    const first = await events.list(from, 50);
    expect(first.rows).toHaveLength(50);
    expect(first.rows.every((e) => e.tenantId === f.providerTenant)).toBe(true);
    const seen: number[] = [];
    let position = from;
    for (let reads = 0; reads < 10; reads++) {
      const read = await events.list(position, 5000);
      if (read.rows.length === 0 && read.through === position) break;
      expect(read.rows.length, 'one stretch a read').toBeLessThanOrEqual(SCANNED_ROWS / 2);
      seen.push(...read.rows.map((e) => Number(e.id)));
      position = read.through;
    }
    expect(seen).toHaveLength(SCANNED_ROWS);
  });
});
