import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withStack } from '@cairn/test-harness/stack';

// better-sqlite3 is the control plane's dependency, not the test root's.
const requireFromControlPlane = createRequire(import.meta.resolve('@cairn/control-plane'));
const Sqlite = requireFromControlPlane('better-sqlite3') as new (file: string) => {
  exec(sql: string): void;
  close(): void;
};

// SQLite only: another process holding the database's write lock is what makes it refuse. On
// MySQL the same answer follows a deadlock (1213) or a lock wait timeout (1205), which a test
// cannot provoke deterministically without waiting out the server's lock timeout.
describe('a busy store (sqlite)', () => {
  const stack = withStack('sqlite');

  it('answers 503 store_busy with Retry-After, writes nothing, and the retry succeeds', async () => {
    const { admin, db } = stack;
    const before = (await admin.get<{ items: { name: string }[] }>('/v1/tenants?limit=500')).body.items.length;
    // An outside writer holds the write lock. The request's transaction has read before it writes,
    // so SQLite refuses it the lock (SQLITE_BUSY) instead of letting two writers wait on each other.
    const outside = new Sqlite(path.join(db.dataDir, 'cairn.db'));
    outside.exec('BEGIN IMMEDIATE');
    let busy;
    try {
      busy = await admin.post('/v1/tenants', { name: 'while-locked' });
    } finally {
      outside.exec('ROLLBACK');
      outside.close();
    }
    expect(busy.status).toBe(503);
    expect(busy.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(busy.body.code).toBe('store_busy');
    expect(busy.body.detail).toMatch(/nothing was changed/);

    const names = (await admin.get<{ items: { name: string }[] }>('/v1/tenants?limit=500')).body.items;
    expect(names).toHaveLength(before);
    expect(names.map((t) => t.name)).not.toContain('while-locked');

    const retry = await admin.post('/v1/tenants', { name: 'while-locked' });
    expect(retry.status).toBe(201);
  }, 60_000);
});
