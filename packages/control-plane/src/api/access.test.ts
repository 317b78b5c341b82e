import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

describe.each(backends)('tenant isolation, roles and pagination (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let admin: Api;
  let alice: Api;
  let bob: Api;
  let aliceTenant: string;
  let bobTenant: string;
  let offeringId: string;

  beforeAll(async () => {
    admin = env.admin;
    const a = await admin.expect(201, 'POST', '/v1/tenants', { name: 'alice-corp' });
    const b = await admin.expect(201, 'POST', '/v1/tenants', { name: 'bob-corp' });
    aliceTenant = a.id;
    bobTenant = b.id;
    alice = env.as(
      (await admin.expect(201, 'POST', `/v1/tenants/${a.id}/tokens`, { role: 'tenant-admin', name: 'a' })).token,
    );
    bob = env.as(
      (await admin.expect(201, 'POST', `/v1/tenants/${b.id}/tokens`, { role: 'tenant-user', name: 'b' })).token,
    );
    offeringId = await env.dummyOffering('gold');
    await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId: a.id });
  });

  it("shows a tenant only its own instances and tasks, and 404 for anyone else's", async () => {
    const vm = await alice.expect(201, 'POST', '/v1/instances', { name: 'vm-a', zone: 'z1', locator: { vm: 'a' } });
    expect(vm.tenantId).toBe(aliceTenant);
    await alice.expect(200, 'PUT', `/v1/instances/${vm.id}/offering`, { offeringId });
    const task = await alice.expect(202, 'POST', `/v1/instances/${vm.id}/backups`);
    expect(task.priority).toBe(0);

    expect((await bob.get(`/v1/instances/${vm.id}`)).status).toBe(404);
    expect((await bob.get(`/v1/tasks/${task.id}`)).status).toBe(404);
    expect((await bob.post(`/v1/tasks/${task.id}/cancel`)).status).toBe(404);
    expect((await bob.post(`/v1/instances/${vm.id}/backups`)).status).toBe(404);
    expect((await bob.expect(200, 'GET', '/v1/instances')).items).toEqual([]);
    expect((await bob.expect(200, 'GET', '/v1/tasks')).items).toEqual([]);
    expect((await bob.expect(200, 'GET', '/v1/events')).items).toEqual([]);
    const usage = (await bob.expect(200, 'GET', '/v1/usage')).items;
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ protectedInstances: 0, backups: 0 });
    expect(usage[0].tenantId).not.toBe(aliceTenant);
    const all = (await admin.expect(200, 'GET', '/v1/usage')).items;
    expect(all.find((u: { tenantId: string }) => u.tenantId === aliceTenant)).toMatchObject({
      protectedInstances: 1,
      unprotectedInstances: 0,
      rpoBreachedInstances: 0,
    });
    // An instance without an offering counts as unprotected, for its own tenant only.
    await alice.expect(201, 'POST', '/v1/instances', { name: 'vm-bare', zone: 'z1', locator: { vm: 'bare' } });
    const aliceUsage = (await alice.expect(200, 'GET', '/v1/usage')).items;
    expect(aliceUsage).toEqual([
      expect.objectContaining({ tenantId: aliceTenant, protectedInstances: 1, unprotectedInstances: 1 }),
    ]);
    expect((await bob.expect(200, 'GET', '/v1/usage')).items[0]).toMatchObject({ unprotectedInstances: 0 });
    expect((await alice.expect(200, 'GET', '/v1/tasks')).items.map((t: { id: string }) => t.id)).toEqual([task.id]);
    expect((await admin.expect(200, 'GET', '/v1/tasks')).items.map((t: { id: string }) => t.id)).toContain(task.id);
  });

  it('lets a tenant assign only offerings granted to it', async () => {
    // Bob has no offering in z1: he may not create an instance there; the SP may place one for him.
    const refused = await bob.post('/v1/instances', { name: 'vm-b', zone: 'z1', locator: {} });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'zone_not_offered', zone: 'z1' });
    const vm = await admin.expect(201, 'POST', '/v1/instances', {
      name: 'vm-b',
      zone: 'z1',
      locator: {},
      tenantId: bobTenant,
    });
    const r = await bob.put(`/v1/instances/${vm.id}/offering`, { offeringId });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].path).toBe('offeringId');
    expect((await bob.expect(200, 'GET', '/v1/offerings')).items).toEqual([]);
    expect((await alice.expect(200, 'GET', '/v1/offerings')).items.map((o: { id: string }) => o.id)).toEqual([
      offeringId,
    ]);
  });

  it('keeps SP-admin operations away from tenants (403)', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/tenants', { name: 'x' }],
      ['GET', '/v1/tenants', undefined],
      ['POST', '/v1/agent-enrollments', { zone: 'z1' }],
      ['GET', '/v1/agents', undefined],
      ['POST', '/v1/zones/z1/providers', { name: 'p', plugin: 'x' }],
      ['POST', '/v1/offerings', { name: 'o' }],
    ] as const) {
      const r = await alice.call(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    const r = await bob.post(`/v1/tenants/${aliceTenant}/tokens`, { role: 'tenant-admin', name: 'steal' });
    expect(r.status).toBe(404);
  });

  it('pages through lists with a cursor, each item once', async () => {
    for (let i = 0; i < 5; i++) await admin.expect(201, 'POST', '/v1/tenants', { name: `page-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { items: { id: string }[]; nextCursor: string | null } = await admin.expect(
        200,
        'GET',
        `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    const all = (await admin.expect(200, 'GET', '/v1/tenants?limit=500')).items.map((t: { id: string }) => t.id);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));
    const bad = await admin.get('/v1/tenants?cursor=%%%');
    expect(bad.status).toBe(400);
    const badLimit = await admin.get('/v1/tenants?limit=0');
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.errors[0].path).toBe('query.limit');
  });

  it('never returns provider credentials', async () => {
    const p = await admin.expect(201, 'POST', '/v1/zones/z1/providers', {
      name: 'with-secret',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      credentials: { password: 'hunter2' },
    });
    expect(p.hasCredentials).toBe(true);
    expect(JSON.stringify(p)).not.toContain('hunter2');
    const listed = await admin.expect(200, 'GET', '/v1/zones/z1/providers');
    expect(JSON.stringify(listed)).not.toContain('hunter2');
    const patch = await admin.call('PATCH', `/v1/zones/z1/providers/${p.id}`, { plugin: 'other' });
    expect(patch.status).toBe(400);
  });
});
