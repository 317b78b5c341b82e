import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { storeFixture } from '../testing/store-fixture.js';

describe.each(backends)('provider endpoints in the store (%s)', (backend) => {
  const f = storeFixture(backend);
  const { catalog } = f.repos;

  it('seals at start the passwords of endpoints an earlier version stored in clear, once, and the agent still gets them', async () => {
    const clear = 'rest:https://u:old-clear-password@repo.sp.example/r';
    const plain = '/srv/backup/plain';
    for (const [id, endpoint] of [
      ['prv_clear', clear],
      ['prv_plain', plain],
    ] as const) {
      // As an earlier version wrote them: the endpoint as given, nothing sealed.
      await f.store.db
        .insertInto('providers')
        .values({
          id,
          zone: 'z',
          name: id,
          plugin: '@cairn/plugin-restic',
          endpoint,
          endpointEnc: null,
          tenantLocators: 'sp-only',
          config: '{}',
          credentialsEnc: null,
          createdAt: 1,
          updatedAt: 1,
        })
        .execute();
    }
    expect(await catalog.sealEndpointSecrets()).toBe(1);
    expect(await catalog.sealEndpointSecrets()).toBe(0);
    const row = (await catalog.getProvider('prv_clear'))!;
    expect(row.endpoint).toBe('rest:https://u:***@repo.sp.example/r');
    expect(row.endpointEnc).not.toContain('old-clear-password');
    expect(catalog.connectionFor(row).endpoint).toBe(clear);
    const untouched = (await catalog.getProvider('prv_plain'))!;
    expect(untouched).toMatchObject({ endpoint: plain, endpointEnc: null });
    expect(catalog.connectionFor(untouched).endpoint).toBe(plain);
    expect((await catalog.allEndpoints()).sort()).toEqual([plain, clear].sort());
  });
});

describe.each(backends)('an instance with its offering and provider in one read (%s)', (backend) => {
  const f = storeFixture(backend);
  const { catalog, tenants } = f.repos;

  it('reads the same rows as the three reads by id, and as far as they exist', async () => {
    const tenant = await tenants.create('chain');
    const provider = await catalog.createProvider({
      zone: 'z',
      name: 'p',
      plugin: '@cairn/plugin-dummy',
      endpoint: null,
      config: { speed: 1 },
      credentials: { key: 'k' },
    });
    const offering = await catalog.createOffering({
      tenantId: tenant.id,
      name: 'gold',
      description: 'd',
      zone: 'z',
      providerId: provider.id,
      externalId: null,
      allowAdhoc: true,
      allowUserSchedules: false,
      sla: { cron: '0 3 * * *', timezone: 'UTC', keepLast: 3 },
    });
    const instance = await catalog.createInstance({
      tenantId: tenant.id,
      name: 'web',
      zone: 'z',
      locator: { path: '/srv' },
      agentId: null,
    });
    const bare = await catalog.createInstance({
      tenantId: tenant.id,
      name: 'bare',
      zone: 'z',
      locator: {},
      agentId: null,
    });
    await catalog.setInstanceOffering(instance.id, offering.id, 5);

    const chain = await catalog.instanceChain(instance.id);
    expect(chain).toEqual({
      instance: await catalog.getInstance(instance.id),
      offering: await catalog.getOffering(offering.id),
      provider: await catalog.getProvider(provider.id),
    });
    expect(chain.instance).toMatchObject({ offeringId: offering.id, offeringSetAt: 5 });
    expect(await catalog.instanceChain(bare.id)).toEqual({ instance: await catalog.getInstance(bare.id) });
    expect(await catalog.instanceChain('ins_00000000000000000000000000')).toEqual({});
  });
});
