import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { CatalogRepository } from './catalog-repository.js';
import { migrate, openStore, type Store } from './db.js';
import { ScheduleRepository } from './schedule-repository.js';
import { SecretBox } from './secrets.js';
import { TenantRepository } from './tenant-repository.js';
import { systemClock } from '../clock.js';

describe.each(backends)('schedule store (%s)', (backend) => {
  let tdb: TestDatabase;
  let store: Store;
  let schedules: ScheduleRepository;
  let catalog: CatalogRepository;
  let tenantId: string;
  let providerId: string;

  beforeAll(async () => {
    tdb = await freshDatabase(backend);
    store = openStore(tdb.url);
    await migrate(store.db);
    schedules = new ScheduleRepository(store.db);
    catalog = new CatalogRepository(store.db, systemClock, SecretBox.load(undefined, tdb.dataDir));
    tenantId = await new TenantRepository(store.db, systemClock).ensureProviderTenant();
    providerId = (
      await catalog.createProvider({
        zone: 'z',
        name: 'p',
        plugin: '@cairn/plugin-dummy',
        endpoint: null,
        config: {},
        credentials: null,
      })
    ).id;
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  const offering = (name: string, keepLast: number | null) =>
    catalog.createOffering({
      tenantId,
      name,
      description: '',
      zone: 'z',
      providerId,
      externalId: null,
      allowAdhoc: false,
      allowUserSchedules: true,
      sla: keepLast === null ? null : { cron: '0 3 * * *', keepLast },
    });

  it('claims a fire exactly once, however many claim it at the same time', async () => {
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => schedules.claimFire('user:ins_x', 1_000_000, 0, 1)),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await schedules.claimFire('user:ins_x', 1_000_000, 0, 2)).toBe(false);
    // Another fire time, or another schedule at the same time, is a fire of its own.
    expect(await schedules.claimFire('user:ins_x', 2_000_000, 0, 3)).toBe(true);
    expect(await schedules.claimFire('sla:off_y', 1_000_000, 0, 4)).toBe(true);
    expect(await schedules.lastFireOf('user:ins_x')).toBe(2_000_000);
    // A fire older than one already claimed is refused (a replica that read stale state).
    expect(await schedules.claimFire('user:ins_x', 1_500_000, 0, 5)).toBe(false);
    expect((await schedules.lastFiresOf(['sla:off_y'])).get('sla:off_y')).toBe(1_000_000);
    expect(await schedules.lastFireOf('user:nothing')).toBeUndefined();
  });

  it('claims a batch of fires in one insert; a batch another caller claimed part of tells nothing (its caller goes one by one), a later fire wins', async () => {
    const keys = (...ks: string[]) => ks.map((k) => `user:ins_b${k}`);
    const claim = (ks: string[], fireAt: number) => ks.map((scheduleKey) => ({ scheduleKey, fireAt, missed: 2 }));
    expect(await schedules.claimFires(claim(keys('1', '2', '3'), 10_000), 1)).toEqual(new Set(keys('1', '2', '3')));
    // Claimed again, by a replica that read the same state: none is this caller's.
    expect(await schedules.claimFire(keys('2')[0]!, 10_000, 2, 2)).toBe(false);
    // Part of the batch claimed already (ins_b1): the insert cannot tell which were this caller's.
    expect(await schedules.claimFires(claim(keys('4', '1', '5'), 10_000), 3)).toBeUndefined();
    // Overlapping batches at once: exactly one caller gets its whole batch.
    const racing = await Promise.all(
      Array.from({ length: 6 }, () => schedules.claimFires(claim(keys('6', '7', '8'), 10_000), 4)),
    );
    expect(racing.filter((r) => r !== undefined)).toEqual([new Set(keys('6', '7', '8'))]);
    // A later fire of one of them was claimed: that one is not run and leaves no row; the older
    // fire of each won one goes.
    expect(await schedules.claimFire(keys('9')[0]!, 30_000, 0, 5)).toBe(true);
    expect(await schedules.claimFires(claim(keys('9', '1', '2'), 20_000), 6)).toEqual(new Set(keys('1', '2')));
    const rows = await store.db
      .selectFrom('scheduleFires')
      .select(['scheduleKey', 'fireAt', 'missed'])
      .where('scheduleKey', 'in', keys('1', '2', '9'))
      .orderBy('scheduleKey')
      .execute();
    expect(rows.map((r) => [r.scheduleKey, Number(r.fireAt), Number(r.missed)])).toEqual([
      [keys('1')[0], 20_000, 2],
      [keys('2')[0], 20_000, 2],
      [keys('9')[0], 30_000, 0],
    ]);
  });

  it('moves a batch of next fire times, each only where neither it nor its schedule changed since it was read', async () => {
    const a = await offering('move-a', 3);
    const b = await offering('move-b', 3);
    const c = await offering('move-c', 3);
    await store.db.updateTable('offerings').set({ nextFireAt: 100 }).where('id', 'in', [a.id, b.id]).execute();
    const setAt = (id: string) =>
      store.db.selectFrom('offerings').select('slaSetAt').where('id', '=', id).executeTakeFirstOrThrow();
    await schedules.moveNextFires([
      { kind: 'sla', id: a.id, read: 100, setAt: (await setAt(a.id)).slaSetAt, next: 200 },
      // Moved meanwhile (read 99): left alone.
      { kind: 'sla', id: b.id, read: 99, setAt: (await setAt(b.id)).slaSetAt, next: 300 },
      // Its SLA changed meanwhile (set at another time): left alone.
      { kind: 'sla', id: c.id, read: null, setAt: 1, next: 400 },
    ]);
    const next = await store.db
      .selectFrom('offerings')
      .select(['id', 'nextFireAt'])
      .where('id', 'in', [a.id, b.id, c.id])
      .execute();
    expect(Object.fromEntries(next.map((r) => [r.id, r.nextFireAt == null ? null : Number(r.nextFireAt)]))).toEqual({
      [a.id]: 200,
      [b.id]: 100,
      [c.id]: null,
    });
  });

  it("keepLastFor: the user schedule's, else the offering SLA's, else null", async () => {
    const sla = await offering('with-sla', 7);
    const plain = await offering('no-sla', null);
    const make = async (name: string, offeringId: string | null) => {
      const row = await catalog.createInstance({ tenantId, name, zone: 'z', locator: {}, agentId: null });
      if (offeringId) await catalog.setInstanceOffering(row.id, offeringId);
      return row.id;
    };
    const onSla = await make('on-sla', sla.id);
    const onSlaOwn = await make('on-sla-own', sla.id);
    const onPlain = await make('on-plain', plain.id);
    const onPlainOwn = await make('on-plain-own', plain.id);
    const bare = await make('bare', null);
    for (const instanceId of [onSlaOwn, onPlainOwn]) {
      await schedules.put({ instanceId, tenantId, cron: '0 1 * * *', timezone: 'UTC', keepLast: 2 }, 10);
    }
    expect(await schedules.keepLastFor(onSla)).toBe(7);
    expect(await schedules.keepLastFor(onSlaOwn)).toBe(2);
    expect(await schedules.keepLastFor(onPlain)).toBeNull();
    expect(await schedules.keepLastFor(onPlainOwn)).toBe(2);
    expect(await schedules.keepLastFor(bare)).toBeNull();
    // Replacing a schedule keeps when it was created and moves when it was set.
    const again = await schedules.put(
      { instanceId: onPlainOwn, tenantId, cron: '0 4 * * *', timezone: 'UTC', keepLast: 9 },
      20,
    );
    expect(again).toMatchObject({ createdAt: 10, updatedAt: 20, keepLast: 9 });
    expect(await schedules.keepLastFor(onPlainOwn)).toBe(9);
    expect(await schedules.delete(onPlainOwn)).toBe(true);
    expect(await schedules.delete(onPlainOwn)).toBe(false);
    expect(await schedules.keepLastFor(onPlainOwn)).toBeNull();
  });

  it("takes the fires due at one time a tenant's turn at a time: one tenant's many cannot hold back another's one", async () => {
    const tenants = new TenantRepository(store.db, systemClock);
    const noisy = (await tenants.create('noisy-due')).id;
    const quiet = (await tenants.create('quiet-due')).id;
    const at = 5_000_000;
    const make = async (owner: string, name: string) => {
      const row = await catalog.createInstance({ tenantId: owner, name, zone: 'z', locator: {}, agentId: null });
      await schedules.put({ instanceId: row.id, tenantId: owner, cron: '* * * * *', timezone: 'UTC', keepLast: 1 }, 10);
      await store.db.updateTable('userSchedules').set({ nextFireAt: at }).where('instanceId', '=', row.id).execute();
      return row.id;
    };
    const noisyIds: string[] = [];
    for (let i = 0; i < 5; i++) noisyIds.push(await make(noisy, `noisy-${i}`));
    // Made last: by id alone it would come after every one of the noisy tenant's.
    const quietId = await make(quiet, 'quiet');
    const mine = new Set([...noisyIds, quietId]);
    const order = (await schedules.dueSchedules(at, 1000)).filter((d) => mine.has(d.id)).map((d) => d.id);
    expect(order).toHaveLength(6);
    expect(order.indexOf(quietId)).toBeLessThanOrEqual(1);
    // Each tenant's own fires stay in key order.
    expect(order.filter((id) => id !== quietId)).toEqual([...noisyIds].sort());
  });
});
