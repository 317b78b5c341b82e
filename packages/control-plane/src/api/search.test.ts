import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

interface Named {
  id: string;
  name: string;
  tenantId: string;
}

/** `?q=` on the instance and job lists: a part of the name or a whole id, within what the token sees. */
describe.each(backends)('searching instances and jobs (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let alice: Api;
  let bob: Api;
  let aliceTenant: string;
  const ids: Record<string, string> = {};

  const names = (page: { items: Named[] }) => page.items.map((i) => i.name).sort();

  beforeAll(async () => {
    const admin = env.admin;
    const a = await admin.expect(201, 'POST', '/v1/tenants', { name: 'alice-search' });
    const b = await admin.expect(201, 'POST', '/v1/tenants', { name: 'bob-search' });
    aliceTenant = a.id;
    alice = env.as(
      (await admin.expect(201, 'POST', `/v1/tenants/${a.id}/tokens`, { role: 'tenant-admin', name: 'a' })).token,
    );
    bob = env.as(
      (await admin.expect(201, 'POST', `/v1/tenants/${b.id}/tokens`, { role: 'tenant-admin', name: 'b' })).token,
    );
    const offeringId = await env.dummyOffering('search');
    for (const tenantId of [a.id, b.id])
      await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId });
    for (const name of ['Web-Prod-1', 'web-prod-2', 'db_main', 'db%main', 'mail']) {
      const vm = await alice.expect(201, 'POST', '/v1/instances', { name, zone: 'z1', locator: { vm: name } });
      ids[name] = vm.id;
    }
    const bobVm = await bob.expect(201, 'POST', '/v1/instances', {
      name: 'web-prod-bob',
      zone: 'z1',
      locator: { vm: 'bob' },
    });
    ids['web-prod-bob'] = bobVm.id;
    for (const [api, name] of [
      [alice, 'Web-Prod-1'],
      [alice, 'db_main'],
      [bob, 'web-prod-bob'],
    ] as const)
      await api.expect(200, 'PUT', `/v1/instances/${ids[name]}/offering`, { offeringId });
    const job = (api: Api, name: string, instanceIds: string[]) =>
      api.expect(201, 'POST', '/v1/backup-jobs', { name, instanceIds, mode: 'FULL', execution: 'PARALLEL' });
    ids['nightly-web'] = (await job(alice, 'nightly-web', [ids['Web-Prod-1']!])).id;
    ids['weekly-db'] = (await job(alice, 'weekly-db', [ids['db_main']!])).id;
    ids['nightly-bob'] = (await job(bob, 'nightly-bob', [ids['web-prod-bob']!])).id;
  });

  it('finds instances by a part of the name, ignoring case, and by a whole id', async () => {
    expect(names(await alice.expect(200, 'GET', '/v1/instances?q=WEB-PROD'))).toEqual(['Web-Prod-1', 'web-prod-2']);
    expect(names(await alice.expect(200, 'GET', '/v1/instances?q=mai'))).toEqual(['db%main', 'db_main', 'mail']);
    expect(names(await alice.expect(200, 'GET', `/v1/instances?q=${ids['mail']}`))).toEqual(['mail']);
    // A part of an id is no match: ids are found whole.
    expect(names(await alice.expect(200, 'GET', `/v1/instances?q=${ids['mail']!.slice(0, 10)}`))).toEqual([]);
  });

  it('reads % and _ as plain characters, not wildcards', async () => {
    expect(names(await alice.expect(200, 'GET', `/v1/instances?q=${encodeURIComponent('db%m')}`))).toEqual(['db%main']);
    expect(names(await alice.expect(200, 'GET', '/v1/instances?q=db_'))).toEqual(['db_main']);
    expect(names(await alice.expect(200, 'GET', `/v1/instances?q=${encodeURIComponent('%')}`))).toEqual(['db%main']);
    expect(names(await alice.expect(200, 'GET', '/v1/instances?q=!'))).toEqual([]);
  });

  it('finds jobs the same way', async () => {
    expect(names(await alice.expect(200, 'GET', '/v1/backup-jobs?q=NIGHTLY'))).toEqual(['nightly-web']);
    expect(names(await alice.expect(200, 'GET', `/v1/backup-jobs?q=${ids['weekly-db']}`))).toEqual(['weekly-db']);
  });

  it("finds nothing of another tenant's, by name or by id; the SP finds every tenant's", async () => {
    expect(names(await bob.expect(200, 'GET', '/v1/instances?q=web-prod'))).toEqual(['web-prod-bob']);
    expect(names(await bob.expect(200, 'GET', `/v1/instances?q=${ids['mail']}`))).toEqual([]);
    expect(names(await bob.expect(200, 'GET', '/v1/backup-jobs?q=nightly'))).toEqual(['nightly-bob']);
    expect(names(await bob.expect(200, 'GET', `/v1/backup-jobs?q=${ids['weekly-db']}`))).toEqual([]);
    expect(names(await alice.expect(200, 'GET', '/v1/instances?q=bob'))).toEqual([]);
    const sp = await env.admin.expect(200, 'GET', '/v1/instances?q=web-prod');
    expect(names(sp)).toEqual(['Web-Prod-1', 'web-prod-2', 'web-prod-bob']);
    expect(sp.items.filter((i: Named) => i.tenantId === aliceTenant)).toHaveLength(2);
  });

  it('pages a search like any list, the cursor keeping to the search', async () => {
    const first = await alice.expect(200, 'GET', '/v1/instances?q=a&limit=2');
    expect(first.items).toHaveLength(2);
    const rest = await alice.expect(
      200,
      'GET',
      `/v1/instances?q=a&limit=2&cursor=${encodeURIComponent(first.nextCursor)}`,
    );
    expect(rest.nextCursor).toBeNull();
    expect([...names(first), ...names(rest)].sort()).toEqual(['db%main', 'db_main', 'mail']);
  });

  it('refuses an empty or too long search, naming query.q', async () => {
    for (const q of ['', 'x'.repeat(101)]) {
      for (const list of ['/v1/instances', '/v1/backup-jobs']) {
        const res = await alice.get(`${list}?q=${q}`);
        expect(res.status).toBe(400);
        expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['query.q']);
      }
    }
  });
});
