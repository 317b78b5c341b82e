import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { CatalogRepository } from './catalog-repository.js';
import { migrate, openStore, type Store } from './db.js';
import { SecretBox } from './secrets.js';
import { systemClock } from '../clock.js';

describe.each(backends)('provider endpoints in the store (%s)', (backend) => {
  let tdb: TestDatabase;
  let store: Store;
  let catalog: CatalogRepository;

  beforeAll(async () => {
    tdb = await freshDatabase(backend);
    store = openStore(tdb.url);
    await migrate(store.db);
    catalog = new CatalogRepository(store.db, systemClock, SecretBox.load(undefined, tdb.dataDir));
  });

  afterAll(async () => {
    await store?.close();
    await tdb?.drop();
  });

  it('seals at start the passwords of endpoints an earlier version stored in clear, once, and the agent still gets them', async () => {
    const clear = 'rest:https://u:old-clear-password@repo.sp.example/r';
    const plain = '/srv/backup/plain';
    for (const [id, endpoint] of [
      ['prv_clear', clear],
      ['prv_plain', plain],
    ] as const) {
      // As an earlier version wrote them: the endpoint as given, nothing sealed.
      await store.db
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
