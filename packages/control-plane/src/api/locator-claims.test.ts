import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

describe.each(backends)('locators are claims the SP grants (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let otherId: string;
  let count = 0;

  const instances = async () => ((await admin.expect(200, 'GET', '/v1/instances?limit=500')).items as unknown[]).length;
  async function connection(zone: string, tenantLocators?: string): Promise<{ id: string; offeringId: string }> {
    const p = await admin.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
      name: `p-${++count}`,
      plugin: '@cairn/plugin-restic',
      endpoint: '/srv/repo',
      ...(tenantLocators ? { tenantLocators } : {}),
    });
    const o = await admin.expect(201, 'POST', '/v1/offerings', {
      name: `o-${count}`,
      zone,
      providerId: p.id,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${o.id}/grants`, { tenantId });
    return { id: p.id, offeringId: o.id };
  }

  beforeAll(async () => {
    admin = env.admin;
    tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' })).id;
    otherId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'globex' })).id;
    tenant = env.as(
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-admin', name: 't' })).token,
    );
  });

  it('by default only an sp-admin sets a locator: a tenant gets 403 naming the field, nothing written', async () => {
    const c = await connection('zone-default');
    expect((await admin.expect(200, 'GET', `/v1/zones/zone-default/providers/${c.id}`)).tenantLocators).toBe('sp-only');
    const before = await instances();
    const r = await tenant.call('POST', '/v1/instances', {
      name: 'x',
      zone: 'zone-default',
      locator: { paths: ['/srv'] },
    });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'locator_not_granted', errors: [{ path: 'locator' }] });
    expect(r.body.detail).toMatch(/only a service-provider admin may set locators/);
    expect(await instances()).toBe(before);
    // A zone with no connection at all has no offering either: the tenant may not work there.
    const none = await tenant.call('POST', '/v1/instances', { name: 'x', zone: 'zone-none', locator: { vm: 1 } });
    expect(none.body).toMatchObject({
      status: 403,
      code: 'zone_not_offered',
      zone: 'zone-none',
      detail: expect.stringMatching(/zone zone-none/),
    });
    expect(await instances()).toBe(before);
    // An sp-admin acting for the tenant may: the instance says who set its locator.
    const made = await admin.expect(201, 'POST', '/v1/instances', {
      name: 'x',
      zone: 'zone-default',
      locator: { paths: ['/srv/anything'] },
      tenantId,
    });
    expect(made).toMatchObject({ tenantId, locatorSetBy: 'sp' });
    await tenant.expect(200, 'PUT', `/v1/instances/${made.id}/offering`, { offeringId: c.offeringId });
  });

  it('granted-roots: a tenant names paths below its own roots only', async () => {
    const c = await connection('zone-roots', 'granted-roots');
    const route = `/v1/zones/zone-roots/providers/${c.id}/tenant-roots`;
    expect(await admin.expect(200, 'GET', `${route}/${tenantId}`)).toEqual({ providerId: c.id, tenantId, roots: [] });
    expect(await admin.expect(200, 'PUT', `${route}/${tenantId}`, { roots: ['/srv/t/acme/', '/srv/t/acme'] })).toEqual({
      providerId: c.id,
      tenantId,
      roots: ['/srv/t/acme'],
    });
    await admin.expect(200, 'PUT', `${route}/${otherId}`, { roots: ['/srv/t/globex'] });

    const ok = await tenant.expect(201, 'POST', '/v1/instances', {
      name: 'www',
      zone: 'zone-roots',
      locator: { paths: ['/srv/t/acme/www', '/srv/t/acme'] },
    });
    expect(ok.locatorSetBy).toBe('tenant');
    await tenant.expect(200, 'PUT', `/v1/instances/${ok.id}/offering`, { offeringId: c.offeringId });

    const before = await instances();
    for (const [paths, field, why] of [
      [['/srv/t/acme/www', '/srv/t/globex'], 'locator.paths[1]', /outside the roots granted/],
      [['/srv/t/acme/../globex'], 'locator.paths[0]', /must not contain \.\. segments/],
      [['/srv/t/acmeX'], 'locator.paths[0]', /outside the roots granted/],
      [['relative'], 'locator.paths[0]', /absolute path/],
      [[], 'locator', /must be \{"paths"/],
    ] as const) {
      const r = await tenant.call('POST', '/v1/instances', { name: 'bad', zone: 'zone-roots', locator: { paths } });
      expect(r.status, JSON.stringify(paths)).toBe(403);
      expect(r.body.errors).toEqual([{ path: field, message: expect.stringMatching(why) }]);
    }
    expect(await instances()).toBe(before);
  });

  it('a tenant locator granted on one connection is refused on another that does not grant it', async () => {
    const open = await connection('zone-mixed', 'any');
    const closed = await connection('zone-mixed');
    const i = await tenant.expect(201, 'POST', '/v1/instances', { name: 'vm', zone: 'zone-mixed', locator: { vm: 7 } });
    const r = await tenant.call('PUT', `/v1/instances/${i.id}/offering`, { offeringId: closed.offeringId });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'locator_not_granted' });
    expect((await tenant.expect(200, 'GET', `/v1/instances/${i.id}`)).offeringId).toBeNull();
    // Even when an sp-admin makes the assignment: the claim is the tenant's.
    expect((await admin.call('PUT', `/v1/instances/${i.id}/offering`, { offeringId: closed.offeringId })).status).toBe(
      403,
    );
    await tenant.expect(200, 'PUT', `/v1/instances/${i.id}/offering`, { offeringId: open.offeringId });
  });

  it('a grant that tenant instances still use cannot be narrowed or withdrawn (409), and nothing changes', async () => {
    const c = await connection('zone-change', 'granted-roots');
    const route = `/v1/zones/zone-change/providers/${c.id}`;
    await admin.expect(200, 'PUT', `${route}/tenant-roots/${tenantId}`, { roots: ['/srv/t/acme'] });
    const i = await tenant.expect(201, 'POST', '/v1/instances', {
      name: 'db',
      zone: 'zone-change',
      locator: { paths: ['/srv/t/acme/db'] },
    });
    await tenant.expect(200, 'PUT', `/v1/instances/${i.id}/offering`, { offeringId: c.offeringId });

    const narrowed = await admin.call('PUT', `${route}/tenant-roots/${tenantId}`, { roots: ['/srv/t/acme/www'] });
    expect(narrowed.status).toBe(409);
    expect(narrowed.body).toMatchObject({ code: 'locator_claims_in_use', detail: expect.stringContaining(i.id) });
    expect((await admin.call('PUT', `${route}/tenant-roots/${tenantId}`, { roots: [] })).status).toBe(409);
    expect((await admin.call('PATCH', route, { tenantLocators: 'sp-only' })).status).toBe(409);
    expect((await admin.expect(200, 'GET', `${route}/tenant-roots/${tenantId}`)).roots).toEqual(['/srv/t/acme']);
    expect((await admin.expect(200, 'GET', route)).tenantLocators).toBe('granted-roots');
    // Another tenant's grant, and widening, are free; without the offering, so is withdrawing.
    await admin.expect(200, 'PUT', `${route}/tenant-roots/${otherId}`, { roots: [] });
    await admin.expect(200, 'PUT', `${route}/tenant-roots/${tenantId}`, { roots: ['/srv/t'] });
    await admin.expect(200, 'PATCH', route, { tenantLocators: 'any' });
    await tenant.expect(204, 'DELETE', `/v1/instances/${i.id}/offering`);
    await admin.expect(200, 'PATCH', route, { tenantLocators: 'sp-only' });
  });

  it('refuses bad grants with 400 naming the field, and grants only to sp-admins of known tenants', async () => {
    const c = await connection('zone-bad', 'granted-roots');
    const route = `/v1/zones/zone-bad/providers/${c.id}/tenant-roots/${tenantId}`;
    for (const [roots, message] of [
      [['srv/t'], /absolute path/],
      [['/srv/../etc'], /\. or \.\. segments/],
      [['/'], /whole file system/],
      [['//'], /whole file system/],
    ] as const) {
      const r = await admin.call('PUT', route, { roots });
      expect(r.status, JSON.stringify(roots)).toBe(400);
      expect(r.body.errors).toEqual([{ path: 'roots.0', message: expect.stringMatching(message) }]);
    }
    expect((await admin.call('PUT', route, { roots: Array.from({ length: 21 }, (_, i) => `/r/${i}`) })).status).toBe(
      400,
    );
    expect((await admin.call('PUT', route, { roots: ['/srv'], extra: 1 })).status).toBe(400);
    expect((await admin.call('PATCH', `/v1/zones/zone-bad/providers/${c.id}`, { tenantLocators: 'all' })).status).toBe(
      400,
    );
    expect((await tenant.call('PUT', route, { roots: ['/srv'] })).status).toBe(403);
    expect((await tenant.call('GET', route)).status).toBe(403);
    expect(
      (
        await admin.call('PUT', `/v1/zones/zone-bad/providers/${c.id}/tenant-roots/ten_00000000000000000000000000`, {
          roots: [],
        })
      ).status,
    ).toBe(404);
    expect((await admin.expect(200, 'GET', route)).roots).toEqual([]);
  });
});
