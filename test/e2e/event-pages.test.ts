import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { withStack } from '@cairn/test-harness/stack';

/**
 * Over twice as many tenants as one read of the log looks at (2,000 events): between the service
 * provider's copies of two changes lie more than two reads' worth of other tenants' copies, so at
 * least one read finds none of its own, wherever the reads fall.
 */
const TENANTS = 4100;

interface EventPage {
  items: { id: string; type: string }[];
  nextCursor: string | null;
}

/*
 * A maintenance change is written once per tenant it touches, and the sp-admin reads only the
 * service provider's own copy. With more tenants than one read looks at, a page of the sp-admin's
 * log can find nothing of its own: it must still hand out a cursor past what it read, so that
 * following the cursors reaches every event of its own, each once, and ends.
 */
describe.each(backends)("the sp-admin's event pages across a wide maintenance change (%s)", (backend) => {
  const stack = withStack(backend);

  it('an empty page that read past other tenants’ copies gives a cursor; following the cursors finds every own copy once, then ends', async () => {
    const { admin } = stack;
    const store = await stack.store();
    const now = Date.now();
    const rows = Array.from({ length: TENANTS }, (_, i) => ({
      id: `ten_zz${String(i).padStart(6, '0')}`,
      name: `wide-${i}`,
      createdAt: now,
    }));
    for (let i = 0; i < rows.length; i += 500)
      await store.db
        .insertInto('tenants')
        .values(rows.slice(i, i + 500))
        .execute();
    const last = await store.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirstOrThrow();
    const after = String(last.id ?? 0);
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: 'wide' });
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: false });

    const seen: { id: string; type: string }[] = [];
    let emptyWithCursor = 0;
    let cursor: string | null = after;
    for (let pages = 0; cursor !== null; pages++) {
      expect(pages, 'the walk ends').toBeLessThan(50);
      const page: EventPage = await admin.expect<EventPage>(200, 'GET', `/v1/events?limit=500&cursor=${cursor}`);
      if (page.items.length === 0 && page.nextCursor !== null) emptyWithCursor++;
      if (page.nextCursor !== null) expect(Number(page.nextCursor)).toBeGreaterThan(Number(cursor));
      seen.push(...page.items.map((e) => ({ id: e.id, type: e.type })));
      cursor = page.nextCursor;
    }
    expect(emptyWithCursor, 'a page of no own event that moved on').toBeGreaterThan(0);
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    const types = seen.map((e) => e.type);
    expect(types.filter((t) => t === 'maintenance.enabled')).toHaveLength(1);
    expect(types.filter((t) => t === 'maintenance.disabled')).toHaveLength(1);
    // Every tenant's copies were written, and the sp-admin read one of each change.
    const copies = await store.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'maintenance.enabled')
      .executeTakeFirstOrThrow();
    expect(Number(copies.n)).toBeGreaterThan(TENANTS);
  });
});
