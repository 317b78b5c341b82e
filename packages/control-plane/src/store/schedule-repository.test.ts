import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { CatalogRepository } from './catalog-repository.js';
import { migrate, openStore, type Store } from './db.js';
import { ScheduleRepository } from './schedule-repository.js';
import { SecretBox } from './secrets.js';
import { TenantRepository } from './tenant-repository.js';

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
    catalog = new CatalogRepository(store.db, SecretBox.load(undefined, tdb.dataDir));
    tenantId = await new TenantRepository(store.db).ensureProviderTenant();
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
});
