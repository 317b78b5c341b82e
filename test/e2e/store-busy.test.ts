import { createRequire } from 'node:module';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { metricValue } from '@cairn/test-harness/metrics';
import { offerDummy } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

// better-sqlite3 is the control plane's dependency, not the test root's.
const requireFromControlPlane = createRequire(import.meta.resolve('@cairn/control-plane'));
const Sqlite = requireFromControlPlane('better-sqlite3') as new (file: string) => {
  exec(sql: string): void;
  close(): void;
};

// Another process holding SQLite's write lock makes every run of the request refuse.
describe('a busy store (sqlite)', () => {
  const stack = withStack('sqlite');

  it('answers 503 store_busy with Retry-After, writes nothing, and the retry succeeds', async () => {
    const { admin, db } = stack;
    const before = (await admin.get<{ items: { name: string }[] }>('/v1/tenants?limit=500')).body.items.length;
    // An outside writer holds the write lock. The request's transaction has read before it writes,
    // so SQLite refuses it the lock (SQLITE_BUSY) instead of letting two writers wait on each other.
    const reruns = (await metricValue(stack.cp, 'cairn_http_busy_reruns_total')) ?? 0;
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
    // The control plane ran it again itself, four times, before answering.
    expect((await metricValue(stack.cp, 'cairn_http_busy_reruns_total')) ?? 0).toBe(reruns + 4);

    const names = (await admin.get<{ items: { name: string }[] }>('/v1/tenants?limit=500')).body.items;
    expect(names).toHaveLength(before);
    expect(names.map((t) => t.name)).not.toContain('while-locked');

    const retry = await admin.post('/v1/tenants', { name: 'while-locked' });
    expect(retry.status).toBe(201);
  }, 60_000);
});

// On MySQL/MariaDB a request's transaction is refused when InnoDB picks it as a deadlock victim.
// The test makes a real deadlock with it: its own transaction, heavier (so InnoDB rolls back the
// request's), holds the event clock's row, which every event-writing transaction takes last, and
// then asks for the tenant's row, which an ad-hoc backup locks first (its quota check).
describe.runIf(backends.includes('mysql'))('a deadlock victim (mysql)', () => {
  const stack = withStack('mysql');

  it('is run again by the control plane: the client gets its answer, and one task is made', async () => {
    const { admin } = stack;
    const tenant = await admin.expect(201, 'POST', '/v1/tenants', { name: 'victim' });
    const token = (
      await admin.expect(201, 'POST', `/v1/tenants/${tenant.id}/tokens`, { role: 'tenant-admin', name: 't' })
    ).token as string;
    const api = stack.api(token);
    const { offeringId } = await offerDummy(admin, 'zone-a', { provider: 'p', offering: 'o', grants: [tenant.id] });
    const instance = await api.expect(201, 'POST', '/v1/instances', {
      name: 'vm',
      zone: 'zone-a',
      locator: { vm: 'vm' },
    });
    await api.expect(200, 'PUT', `/v1/instances/${instance.id}/offering`, { offeringId });
    const reruns = (await metricValue(stack.cp, 'cairn_http_busy_reruns_total')) ?? 0;

    const holder = await createConnection(stack.db.url);
    const watcher = await createConnection(stack.db.url);
    try {
      await holder.query('CREATE TABLE busy_weight (n INT PRIMARY KEY)');
      await holder.query('BEGIN');
      // Weight: InnoDB rolls back the transaction that changed fewer rows.
      await holder.query(
        `INSERT INTO busy_weight (n) VALUES ${Array.from({ length: 500 }, (_, i) => `(${i})`).join(',')}`,
      );
      await holder.query('SELECT ticks FROM event_clock WHERE id = 1 FOR UPDATE');

      const answer = api.call('POST', `/v1/instances/${instance.id}/backups`, {}, { 'idempotency-key': 'k1' });
      // The request holds the tenant's row and waits for the clock's.
      await waitFor(async () => {
        // What a connection of this database is executing now: the request's write of the clock.
        const [rows] = (await watcher.query(
          "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'update `event_clock`%'",
        )) as unknown as [unknown[]];
        return rows.length > 0 || undefined;
      }, 'the request waiting on the held clock');
      // The cycle: InnoDB rolls the request back at once (a deadlock, 1213), and this goes on.
      await holder.query('UPDATE tenants SET name = name WHERE id = ?', [tenant.id]);
      await holder.query('ROLLBACK');

      const reply = await answer;
      expect(reply.status, JSON.stringify(reply.body)).toBe(202);
      expect(reply.headers.get('retry-after')).toBeNull();
      expect((await metricValue(stack.cp, 'cairn_http_busy_reruns_total')) ?? 0).toBeGreaterThan(reruns);
      const tasks = (await api.expect(200, 'GET', `/v1/tasks?instanceId=${instance.id}&limit=50`)).items as {
        id: string;
        kind: string;
      }[];
      expect(tasks.filter((t) => t.kind === 'backup').map((t) => t.id)).toEqual([reply.body.id]);
      // Its Idempotency-Key holds the answer of the run that committed.
      const replay = await api.call('POST', `/v1/instances/${instance.id}/backups`, {}, { 'idempotency-key': 'k1' });
      expect(replay.status).toBe(202);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.id).toBe(reply.body.id);
    } finally {
      await holder.end();
      await watcher.end();
    }
  }, 60_000);
});
