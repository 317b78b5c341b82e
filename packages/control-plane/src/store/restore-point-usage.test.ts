import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../clock.js';
import { BackupRepository } from './backup-repository.js';
import { openStore, transact } from './db.js';
import { firstIdAt, newId } from './ids.js';
import * as usageMigration from './migrations/0034-restore-point-usage.js';
import * as protectedMigration from './migrations/0041-protected-bytes.js';
import * as lastBackupMigration from './migrations/0043-last-backup-at.js';
import { RpoRepository } from './rpo-repository.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import type { BackupRow } from './schema.js';
import { UsageRepository } from './usage-repository.js';

/** Whether a record `b` counts toward the per-offering quotas (not vanished, no delete under way). */
const COUNTS = sql`b.vanished_at is null and (b.delete_task_id is null
  or exists (select 1 from tasks t where t.id = b.delete_task_id and t.state in ('failed', 'cancelled', 'lost')))`;

/** The time an id was made at (its ten base32 digits after the prefix). */
function idTime(id: string): number {
  return [...id.slice(4, 14)].reduce((t, c) => t * 32 + '0123456789abcdefghjkmnpqrstvwxyz'.indexOf(c), 0);
}

/** One change to the records, as the control plane makes them (sync, retention, a backup's end). */
type Op =
  /**
   * `ahead` (an adopt's): by a replica whose clock runs two hours ahead, so its record's id sorts after
   * the ids this one makes for two hours (ids are made from the clock).
   */
  | { kind: 'adopt' | 'record'; place: number; size: number; ahead?: boolean }
  | { kind: 'vanish'; picks: number[]; vanished: boolean }
  | { kind: 'claim' | 'gone'; pick: number }
  | { kind: 'end'; pick: number; state: 'succeeded' | 'failed' | 'cancelled' | 'lost' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('adopt' as const, 'record' as const),
    place: fc.nat(4),
    size: fc.nat(5000),
    ahead: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('vanish' as const),
    picks: fc.array(fc.nat(), { maxLength: 4 }),
    vanished: fc.boolean(),
  }),
  fc.record({ kind: fc.constantFrom('claim' as const, 'gone' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('end' as const),
    pick: fc.nat(),
    state: fc.constantFrom('succeeded' as const, 'failed' as const, 'cancelled' as const, 'lost' as const),
  }),
);

/*
 * A tenant's restore points per offering are counted once, as records change, and read as one row
 * by every backup's start (as the quotas count them) and by the usage report (every record and
 * the bytes stored). The figures must follow every change: a record made (by a backup or adopted
 * by a sync), vanished or back, a delete asked, its task ending either way, a record removed.
 * Here random runs of those changes, on two tenants with two offerings each, are checked after
 * each run against the figures of the records themselves.
 */
describe.each(backends)("a tenant's restore-point count kept with the records (%s)", (backend) => {
  const f = storeFixture(backend, { tasksByHand: true });
  const { backups, tasks, quotas } = f.repos;
  let providerId: string;
  /** Tenant, offering and instance of each of the four places. */
  const places: { tenantId: string; offeringId: string; instanceId: string; name: string }[] = [];

  beforeAll(async () => {
    providerId = (await f.provider({ credentials: {} })).id;
    const offerings = [(await f.offering({ providerId })).id, (await f.offering({ providerId })).id];
    for (const t of [0, 1]) {
      const tenantId = (await f.repos.tenants.create(`usage-${t}`)).id;
      for (const offeringId of offerings) {
        const name = `vm-${places.length}`;
        const instance = await f.instance({ tenantId, name });
        places.push({ tenantId, offeringId, instanceId: instance.id, name });
      }
    }
    // The first instance under its tenant's other offering too (moved between the two): its
    // newest record, what its bytes protected count, may be of either.
    places.push({ ...places[0]!, offeringId: offerings[1]! });
  });

  type Figures = { restorePoints: number; bytes: number; records: number; storedBytes: number; protectedBytes: number };
  /** The figures as the records themselves give them, per `tenant offering` (none: absent). */
  const recount = async (): Promise<Record<string, Figures>> => {
    const { rows } = await sql<{ tenantId: string; offeringId: string } & Record<keyof Figures, number | null>>`
      select b.tenant_id, b.offering_id,
        sum(case when ${COUNTS} then 1 else 0 end) as restore_points,
        sum(case when ${COUNTS} then b.size_bytes else 0 end) as bytes,
        count(*) as records,
        sum(coalesce(b.added_bytes, b.size_bytes)) as stored_bytes,
        sum(case when b.id = (select max(n.id) from backups n where n.instance_id = b.instance_id)
          then b.size_bytes else 0 end) as protected_bytes
      from backups b group by b.tenant_id, b.offering_id`.execute(f.store.db);
    return Object.fromEntries(
      rows.map((r) => [
        `${r.tenantId} ${r.offeringId}`,
        {
          restorePoints: Number(r.restorePoints),
          bytes: Number(r.bytes ?? 0),
          records: Number(r.records),
          storedBytes: Number(r.storedBytes ?? 0),
          protectedBytes: Number(r.protectedBytes ?? 0),
        },
      ]),
    );
  };
  /** The figures as kept, in the same shape (rows all at zero left out). */
  const kept = async (): Promise<Record<string, Figures>> => {
    const rows = await f.store.db.selectFrom('restorePointUsage').selectAll().execute();
    const out: Record<string, Figures> = {};
    for (const r of rows) {
      const figures = {
        restorePoints: Number(r.restorePoints),
        bytes: Number(r.bytes),
        records: Number(r.records),
        storedBytes: Number(r.storedBytes),
        protectedBytes: Number(r.protectedBytes),
      };
      if (Object.values(figures).some((n) => n !== 0)) out[`${r.tenantId} ${r.offeringId}`] = figures;
    }
    return out;
  };
  /** The quotas' reading of the kept figures, per `tenant offering`. */
  const quotasRead = async () => {
    const out: Record<string, { restorePoints: number; bytes: number }> = {};
    for (const { tenantId } of places.filter((_, i) => i % 2 === 0)) {
      for (const [offeringId, u] of await quotas.usageByOffering(tenantId)) {
        if (u.restorePoints > 0) out[`${tenantId} ${offeringId}`] = u;
      }
    }
    return out;
  };
  const quotasOf = (figures: Record<string, Figures>) =>
    Object.fromEntries(
      Object.entries(figures)
        .filter(([, u]) => u.restorePoints > 0)
        .map(([key, u]) => [key, { restorePoints: u.restorePoints, bytes: u.bytes }]),
    );

  /** The usage report's figures of the two tenants. */
  const billed = async () => {
    const page = await new UsageRepository(f.store.db).perTenant({ limit: 100 });
    const mine = new Set(places.map((p) => p.tenantId));
    return page.items
      .filter((t) => mine.has(t.tenantId))
      .map(({ tenantId, backups, storedBytes, protectedBytes }) => ({
        tenantId,
        backups,
        storedBytes,
        protectedBytes,
      }));
  };
  /** The same, from the records themselves (each instance's newest record: the highest id). */
  const billedByRecords = async () => {
    const figures = await recount();
    const out = [];
    for (const tenantId of [...new Set(places.map((p) => p.tenantId))].sort()) {
      const mine = Object.entries(figures).filter(([key]) => key.startsWith(`${tenantId} `));
      const { rows } = await sql<{ bytes: number | null }>`
        select sum(b.size_bytes) as bytes from backups b
        where b.tenant_id = ${tenantId} and b.id = (select max(n.id) from backups n where n.instance_id = b.instance_id)`.execute(
        f.store.db,
      );
      out.push({
        tenantId,
        backups: mine.reduce((n, [, u]) => n + u.records, 0),
        storedBytes: mine.reduce((n, [, u]) => n + u.storedBytes, 0),
        protectedBytes: Number(rows[0]?.bytes ?? 0),
      });
    }
    return out;
  };

  const all = () => f.store.db.selectFrom('backups').selectAll().orderBy('id').execute();
  /**
   * Each instance's latest trusted restore point time (each record's createdAt, no later than its
   * recording), and the oldest of them (`/metrics`): as kept, and from the records themselves.
   */
  const lastBackups = async () => {
    const rows = await f.store.db
      .selectFrom('newestBackups')
      .select(['instanceId', 'lastBackupAt'])
      .where('lastBackupAt', 'is not', null)
      .orderBy('instanceId')
      .execute();
    return {
      perInstance: Object.fromEntries(rows.map((r) => [r.instanceId, Number(r.lastBackupAt)])),
      oldest: await new RpoRepository(f.store.db).oldestLastBackup(),
    };
  };
  const lastBackupsByRecords = async () => {
    const perInstance: Record<string, number> = {};
    for (const r of await all()) {
      const at = Math.min(Number(r.createdAt), Number(r.recordedAt));
      perInstance[r.instanceId] = Math.max(perInstance[r.instanceId] ?? -Infinity, at);
    }
    const times = Object.values(perInstance);
    return {
      perInstance: Object.fromEntries(Object.entries(perInstance).sort(([a], [b]) => (a < b ? -1 : 1))),
      oldest: times.length === 0 ? null : Math.min(...times),
    };
  };
  const pick = (rows: BackupRow[], i: number) => (rows.length === 0 ? undefined : rows[i % rows.length]);
  let at = Date.parse('2026-06-01T00:00:00Z');
  /** The changes that took effect at least once (whatever the random runs drew). */
  const did = new Set<string>();

  async function apply(o: Op): Promise<void> {
    const now = ++at;
    const rows = await all();
    await transact(f.store.db, async (trx) => {
      switch (o.kind) {
        case 'adopt': {
          const p = places[o.place]!;
          // Dated up to five hours before now (an instance's latest point is not always its newest
          // record), or a year ahead (a host clock gone wrong: it counts from its recording).
          const k = o.size % 7;
          const createdAt = k === 6 ? now + 365 * 86_400_000 : now - k * 3_600_000;
          const point = { createdAt, sizeBytes: o.size, mode: 'FULL', parentId: null, expiresAt: null };
          const { row } = await backups.adopt(
            trx,
            { id: p.instanceId, ...p },
            { ...point, externalId: `ext-${now}` },
            now,
          );
          did.add('adopt');
          const newest = await trx
            .selectFrom('newestBackups')
            .select('backupId')
            .where('instanceId', '=', p.instanceId)
            .executeTakeFirst();
          if (o.kind === 'adopt' && o.ahead && newest?.backupId === row.id) {
            // The id that replica made: as the record and its instance's newest, which it is.
            const id = `${firstIdAt('bkp', idTime(row.id) + 2 * 3_600_000)}${row.id.slice(-16)}`;
            await trx.updateTable('backups').set({ id }).where('id', '=', row.id).execute();
            await trx.updateTable('newestBackups').set({ backupId: id }).where('backupId', '=', row.id).execute();
          }
          return;
        }
        case 'record': {
          const p = places[o.place]!;
          const task = await tasks.create(
            backupTask({ tenantId: p.tenantId, providerId, instanceId: p.instanceId, offeringId: p.offeringId }),
            now,
            trx,
          );
          // Recorded as a backup's end records it: the task ended first.
          await trx.updateTable('tasks').set({ state: 'succeeded' }).where('id', '=', task.id).execute();
          const meta = {
            externalId: `ext-${now}`,
            sizeBytes: o.size,
            addedBytes: Math.floor(o.size / 3),
            mode: 'FULL',
            parentExternalId: '',
          };
          await backups.recordFromTask(trx, task, meta, now);
          did.add('record');
          return;
        }
        case 'vanish': {
          const picked = o.picks.map((i) => pick(rows, i)).filter((r) => r !== undefined);
          await backups.setVanished(trx, [...new Set(picked.map((r) => r.id))], o.vanished ? now : null);
          if (picked.some((r) => (r.vanishedAt === null) === o.vanished)) did.add(o.vanished ? 'vanish' : 'unvanish');
          return;
        }
        case 'claim': {
          const r = pick(rows, o.pick);
          if (!r) return;
          const pending = r.deleteTaskId ? await tasks.get(r.deleteTaskId, trx) : undefined;
          if (pending && ['queued', 'dispatched', 'running'].includes(pending.state)) return;
          const id = newId('tsk', now);
          if (!(await backups.claimDelete(trx, r.id, id, r.deleteTaskId))) return;
          did.add('claim');
          await tasks.create(
            {
              ...backupTask({ tenantId: r.tenantId, providerId, instanceId: r.instanceId, offeringId: r.offeringId }),
              kind: 'delete-backup',
              backupId: r.id,
              id,
            },
            now,
            trx,
          );
          return;
        }
        case 'end': {
          // As a delete task's end does (retention's reaction to it), with the task moved first.
          const r = pick(
            rows.filter((b) => b.deleteTaskId !== null),
            o.pick,
          );
          if (!r) return;
          const task = (await tasks.get(r.deleteTaskId!, trx))!;
          if (!['queued', 'dispatched', 'running'].includes(task.state)) return;
          await trx.updateTable('tasks').set({ state: o.state }).where('id', '=', task.id).execute();
          if (o.state === 'succeeded') await backups.removeDeleted(trx, r.id, task.id);
          else if (await backups.exists(trx, r.id)) await backups.deleteUndone(trx, r.id, task.id);
          did.add(`end:${o.state}`);
          return;
        }
        case 'gone': {
          const r = pick(rows, o.pick);
          if (r && (await backups.removeGone(trx, r.id))) did.add('gone');
          return;
        }
      }
    });
  }

  /**
   * Notes a record written older (by id) than its instance's newest, yet later (by trusted time)
   * than any of its instance's points: the newest stays, the latest point moves to it.
   */
  const laterButOlder = (was: BackupRow[], now: BackupRow[]) => {
    const known = new Set(was.map((r) => r.id));
    for (const r of now.filter((b) => !known.has(b.id))) {
      const mine = was.filter((b) => b.instanceId === r.instanceId);
      const latest = Math.max(...mine.map((b) => Math.min(Number(b.createdAt), Number(b.recordedAt))));
      if (mine.some((b) => b.id > r.id) && Math.min(Number(r.createdAt), Number(r.recordedAt)) > latest)
        did.add('an older record moved the latest point');
    }
  };

  /** Notes whether an instance that lost records lost its latest point, or only earlier ones. */
  const removals = (was: BackupRow[], now: BackupRow[]) => {
    const left = new Set(now.map((r) => r.id));
    for (const instanceId of new Set(was.map((r) => r.instanceId))) {
      const mine = was.filter((r) => r.instanceId === instanceId);
      const gone = mine.filter((r) => !left.has(r.id));
      if (gone.length === 0) continue;
      const latest = Math.max(...mine.map((r) => Math.min(Number(r.createdAt), Number(r.recordedAt))));
      const earlier = gone.every((r) => Math.min(Number(r.createdAt), Number(r.recordedAt)) < latest);
      did.add(earlier ? 'removed earlier points only' : 'removed the latest point');
    }
  };

  it('follows every change to the records: made, vanished and back, a delete asked, ended either way, removed', async () => {
    let changes = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
        for (const o of ops) {
          const was = await all();
          await apply(o);
          const now = await all();
          removals(was, now);
          laterButOlder(was, now);
          // After each change: a later record of the instance would hide a time left stale.
          expect(await lastBackups()).toEqual(await lastBackupsByRecords());
        }
        changes += ops.length;
        const records = await recount();
        expect(await kept()).toEqual(records);
        expect(await quotasRead()).toEqual(quotasOf(records));
        expect(await billed()).toEqual(await billedByRecords());
      }),
      {
        numRuns: 20,
        // One run that takes each way for certain, whatever the random ones draw.
        examples: [
          [
            [
              { kind: 'record', place: 0, size: 100 },
              { kind: 'adopt', place: 0, size: 201 },
              { kind: 'adopt', place: 3, size: 300 },
              { kind: 'adopt', place: 2, size: 6 },
              { kind: 'claim', pick: 0 },
              { kind: 'end', pick: 0, state: 'failed' },
              { kind: 'claim', pick: 0 },
              { kind: 'end', pick: 0, state: 'succeeded' },
              { kind: 'claim', pick: 0 },
              { kind: 'vanish', picks: [0, 1], vanished: true },
              { kind: 'end', pick: 0, state: 'lost' },
              { kind: 'vanish', picks: [0], vanished: false },
              { kind: 'gone', pick: 0 },
              // Its only point an old one a replica ahead found, then a record made here.
              { kind: 'adopt', place: 1, size: 5, ahead: true },
              { kind: 'record', place: 1, size: 50 },
            ],
          ],
        ],
      },
    );
    // The runs did reach each way a record counts or stops counting.
    expect(changes).toBeGreaterThan(100);
    expect([...did]).toEqual(
      expect.arrayContaining([
        'adopt',
        'record',
        'vanish',
        'unvanish',
        'claim',
        'end:failed',
        'end:succeeded',
        'end:lost',
        'gone',
        'removed earlier points only',
        'removed the latest point',
        'an older record moved the latest point',
      ]),
    );
  });

  it('migration 0034 counts the records as they stand', async () => {
    await apply({ kind: 'adopt', place: 1, size: 10 });
    const before = await recount();
    expect(Object.keys(before).length).toBeGreaterThan(0);
    const db = f.store.db as unknown as Kysely<unknown>;
    await lastBackupMigration.down(db);
    await protectedMigration.down(db);
    await usageMigration.down(db);
    await usageMigration.up(db);
    await protectedMigration.up(db);
    await lastBackupMigration.up(db);
    expect(await kept()).toEqual(before);
  });

  it.runIf(backend === 'mysql')(
    'two first records of two instances side by side, written at once: neither waits for the other',
    async () => {
      // Each writer locks its instance's row, not a range of records: with a locking read of each
      // instance's newest record, the second waited on the first's lock of the gap between them
      // (and two such writers that both went on to write a record deadlocked). Two tenants: the
      // usage row of one tenant and offering is the one thing two writers share by design.
      const other = openStore(f.tdb.url);
      try {
        const { tenantId, offeringId } = places[0]!;
        const theirs = places[3]!;
        const a = await f.instance({ tenantId, name: 'side-a' });
        const b = await f.instance({ tenantId: theirs.tenantId, name: 'side-b' });
        const point = (externalId: string) => ({
          externalId,
          createdAt: ++at,
          sizeBytes: 7,
          mode: 'FULL',
          parentId: null,
          expiresAt: null,
        });
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let wrote!: () => void;
        const firstWrote = new Promise<void>((r) => (wrote = r));
        const first = transact(f.store.db, async (trx) => {
          await backups.adopt(trx, { id: a.id, tenantId, name: 'side-a', offeringId }, point('side-a'), ++at);
          wrote();
          await held;
        });
        await firstWrote;
        const second = transact(other.db, (trx) =>
          new BackupRepository(other.db, systemClock).adopt(
            trx,
            { id: b.id, tenantId: theirs.tenantId, name: 'side-b', offeringId: theirs.offeringId },
            point('side-b'),
            ++at,
          ),
        );
        const outcome = await Promise.race([
          second.then(() => 'written'),
          sleep(10_000).then(() => 'waited for the first'),
        ]);
        release();
        await first;
        await second;
        expect(outcome).toBe('written');
        expect(await kept()).toEqual(await recount());
      } finally {
        await other.close();
      }
    },
  );

  it('migration 0041 fills the bytes protected from the records as they stand', async () => {
    for (const place of [0, 4, 2, 0]) await apply({ kind: 'record', place, size: 100 + place });
    const before = await recount();
    expect(Object.values(before).some((u) => u.protectedBytes > 0)).toBe(true);
    const db = f.store.db as unknown as Kysely<unknown>;
    await lastBackupMigration.down(db);
    await protectedMigration.down(db);
    await protectedMigration.up(db);
    await lastBackupMigration.up(db);
    expect(await kept()).toEqual(before);
    expect(await billed()).toEqual(await billedByRecords());
  });

  it("migration 0043 fills each instance's latest trusted restore point time from the records as they stand", async () => {
    await apply({ kind: 'record', place: 3, size: 7 });
    await apply({ kind: 'adopt', place: 3, size: 12 });
    const before = await lastBackupsByRecords();
    expect(before.oldest).not.toBeNull();
    const db = f.store.db as unknown as Kysely<unknown>;
    await lastBackupMigration.down(db);
    await lastBackupMigration.up(db);
    expect(await lastBackups()).toEqual(before);
  });

  it('an instance deleted once its records went leaves no newest row behind', async () => {
    const { tenantId, offeringId } = places[0]!;
    const instance = await f.instance({ tenantId, name: 'vm-deleted' });
    const place = { tenantId, offeringId, instanceId: instance.id, name: 'vm-deleted' };
    places.push(place);
    try {
      await apply({ kind: 'record', place: places.length - 1, size: 40 });
    } finally {
      places.pop();
    }
    const newest = () =>
      f.store.db.selectFrom('newestBackups').select('instanceId').where('instanceId', '=', instance.id).execute();
    expect(await newest()).toHaveLength(1);
    const [record] = await f.store.db
      .selectFrom('backups')
      .select('id')
      .where('instanceId', '=', instance.id)
      .execute();
    // Its delete asked, and its point gone from the provider: the record goes.
    await transact(f.store.db, async (trx) => {
      expect(await backups.claimDelete(trx, record!.id, newId('tsk', ++at), null)).toBe(true);
      expect(await backups.removeGone(trx, record!.id)).toBe(true);
    });
    // The row stays while the instance does (no record, no time): the next record's lock takes it.
    expect(await newest()).toHaveLength(1);
    await f.repos.catalog.deleteInstance(instance.id);
    expect(await newest()).toHaveLength(0);
    expect(await lastBackups()).toEqual(await lastBackupsByRecords());
  });

  it("a backup's start reads the kept count: a count set apart from the records is what it judges by", async () => {
    const { tenantId, offeringId } = places[0]!;
    await f.store.db
      .deleteFrom('restorePointUsage')
      .where('tenantId', '=', tenantId)
      .where('offeringId', '=', offeringId)
      .execute();
    await f.store.db
      .insertInto('restorePointUsage')
      .values({
        tenantId,
        offeringId,
        restorePoints: 7_000_000,
        bytes: 0,
        records: 0,
        storedBytes: 0,
        protectedBytes: 0,
      })
      .execute();
    const refusal = await quotas.backupRefusal(tenantId, offeringId);
    expect(refusal).toMatchObject({ quota: 'restorePointsPerOffering', offeringId });
  });
});
