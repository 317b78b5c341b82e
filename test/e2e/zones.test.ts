import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/*
 * A tenant sees and works only in the zones where it has an offering (granted, or its own). Here
 * acme is granted an offering in zone-a; zone-b has agents and offerings of the SP and of globex
 * only. acme, as an attacker, asks for zone-b's maintenance, its plugins and agents, and tries
 * to create an instance there.
 */
describe.each(backends)('zones a tenant may see (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-a' }, { zone: 'zone-b', name: 'host-b' }] });
  let admin: Api;
  let acme: Api;
  let globex: Api;
  let acmeId: string;
  let agentA: string;
  let agentB: string;

  beforeAll(async () => {
    admin = stack.admin;
    const token = async (tenantId: string) => stack.api(await stack.token(tenantId, 'tenant-admin', 'ops'));
    acmeId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' })).id;
    const globexId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'globex' })).id;
    acme = await token(acmeId);
    globex = await token(globexId);
    [agentA, agentB] = stack.agents.map((a) => a.agentId) as [string, string];
    await waitFor(
      async () => (await admin.expect(200, 'GET', '/v1/plugins')).items.length === 2,
      'both agents to report their plugins',
    );
    const inA = await protectInstance(admin, 'zone-a');
    await admin.expect(201, 'POST', `/v1/offerings/${inA.offeringId}/grants`, { tenantId: acmeId });
    const inB = await protectInstance(admin, 'zone-b');
    await admin.expect(201, 'POST', `/v1/offerings/${inB.offeringId}/grants`, { tenantId: globexId });
  }, 60_000);

  it('shows a tenant the maintenance of its zones only; the sp-admin sees every zone', async () => {
    expect((await acme.get('/v1/zones/zone-a/maintenance')).status).toBe(200);
    // An instance in zone-b would be the way in: it is refused, and the view stays closed.
    expect((await acme.post('/v1/instances', { name: 'door', zone: 'zone-b', locator: {} })).status).toBe(403);
    const foreign = await acme.get('/v1/zones/zone-b/maintenance');
    expect(foreign.status).toBe(404);
    expect(foreign.body.code).toBe('not_found');
    expect((await acme.get('/v1/zones/zone-b/maintenance?wait=ready&timeoutS=1')).status).toBe(404);
    expect((await globex.get('/v1/zones/zone-b/maintenance')).status).toBe(200);
    expect((await globex.get('/v1/zones/zone-a/maintenance')).status).toBe(404);
    expect((await admin.get('/v1/zones/zone-b/maintenance')).status).toBe(200);
    // Agents' maintenance is the SP's alone.
    expect((await acme.get(`/v1/agents/${agentB}/maintenance`)).status).toBe(403);
  });

  it('lists a tenant the plugins of its zones only, without agent counts', async () => {
    const mine = (await acme.expect(200, 'GET', '/v1/plugins')).items as Record<string, unknown>[];
    expect(mine.map((p) => p['zone'])).toEqual(['zone-a']);
    for (const p of mine) expect(p).not.toHaveProperty('agents');
    expect(JSON.stringify(mine)).not.toContain(agentB);
    const all = (await admin.expect(200, 'GET', '/v1/plugins')).items as Record<string, unknown>[];
    expect(all.map((p) => [p['zone'], p['agents']])).toEqual([
      ['zone-a', 1],
      ['zone-b', 1],
    ]);
    // A tenant without any offering sees no zone at all.
    const initech = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'initech' })).id;
    const none = stack.api(
      (await admin.expect(201, 'POST', `/v1/tenants/${initech}/tokens`, { role: 'tenant-admin', name: 'ops' })).token,
    );
    expect((await none.expect(200, 'GET', '/v1/plugins')).items).toEqual([]);
  });

  it('refuses a tenant an instance in a zone where it has no offering (403 zone_not_offered), and creates nothing', async () => {
    const before = (await acme.expect(200, 'GET', '/v1/instances?limit=500')).items.length;
    for (const body of [
      { name: 'sneak', zone: 'zone-b', locator: {} },
      { name: 'sneak', zone: 'zone-b', locator: {}, agentId: agentB },
      { name: 'sneak', zone: 'zone-nowhere', locator: {} },
      { name: 'sneak', zone: 'zone-b', locator: {}, tenantId: acmeId },
    ]) {
      const r = await acme.post('/v1/instances', body);
      expect(r.status, JSON.stringify(body)).toBe(403);
      expect(r.body.code).toBe('zone_not_offered');
      expect(r.body.zone).toBe(body.zone);
      expect(r.body.detail).toContain(body.zone);
    }
    // In its own zone, naming another zone's agent tells it nothing of where that agent is.
    const pinned = await acme.post('/v1/instances', { name: 'pin', zone: 'zone-a', locator: {}, agentId: agentB });
    expect(pinned.status).toBe(400);
    expect(JSON.stringify(pinned.body)).not.toContain('zone-b');
    expect((await acme.expect(200, 'GET', '/v1/instances?limit=500')).items.length).toBe(before);
    // Its own zone works; the sp-admin may still place a tenant's instance anywhere, which opens
    // nothing of that zone to the tenant.
    await acme.expect(201, 'POST', '/v1/instances', { name: 'ok', zone: 'zone-a', locator: {} });
    await admin.expect(201, 'POST', '/v1/instances', { name: 'placed', zone: 'zone-b', locator: {}, tenantId: acmeId });
    expect((await acme.get('/v1/zones/zone-b/maintenance')).status).toBe(404);
    expect(((await acme.expect(200, 'GET', '/v1/plugins')).items as { zone: string }[]).map((p) => p.zone)).toEqual([
      'zone-a',
    ]);
  });

  it('lists zones with their agents’ states: the sp-admin every zone and its agents, a tenant its zones without agents', async () => {
    // An agent enrolled in zone-c that never connected: a zone of its own, its agent disconnected.
    const c = await stack.enroll('zone-c', 'host-c');
    const all = (await admin.expect(200, 'GET', '/v1/zones')) as {
      items: { zone: string; agentStates: Record<string, number>; agents?: { id: string; state: string }[] }[];
      nextCursor: string | null;
    };
    expect(all.nextCursor).toBeNull();
    expect(all.items.map((z) => [z.zone, z.agentStates])).toEqual([
      ['zone-a', { connected: 1, disconnected: 0, draining: 0 }],
      ['zone-b', { connected: 1, disconnected: 0, draining: 0 }],
      ['zone-c', { connected: 0, disconnected: 1, draining: 0 }],
    ]);
    expect(all.items.map((z) => z.agents?.map((a) => [a.id, a.state]))).toEqual([
      [[agentA, 'connected']],
      [[agentB, 'connected']],
      [[c.agentId, 'disconnected']],
    ]);
    // Paged like every list: one zone a page, each once.
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await admin.expect(
        200,
        'GET',
        `/v1/zones?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      )) as { items: { zone: string }[]; nextCursor: string | null };
      walked.push(...page.items.map((z) => z.zone));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(walked).toEqual(['zone-a', 'zone-b', 'zone-c']);
    expect((await admin.get('/v1/zones?cursor=em9uZS1h')).body.code).toBe('bad_cursor');

    // A tenant: its offered zones only, the states counted, no agent named.
    const mine = await acme.expect(200, 'GET', '/v1/zones');
    expect(mine).toEqual({
      items: [{ zone: 'zone-a', agentStates: { connected: 1, disconnected: 0, draining: 0 } }],
      nextCursor: null,
    });
    expect(JSON.stringify(mine)).not.toContain('agt_');
    expect(((await globex.expect(200, 'GET', '/v1/zones')).items as { zone: string }[]).map((z) => z.zone)).toEqual([
      'zone-b',
    ]);
    const initech = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'initech-zones' })).id;
    const none = stack.api(
      (await admin.expect(201, 'POST', `/v1/tenants/${initech}/tokens`, { role: 'tenant-admin', name: 'ops' })).token,
    );
    expect(await none.expect(200, 'GET', '/v1/zones')).toEqual({ items: [], nextCursor: null });
  });

  it('creates a provider connection in a zone no agent can serve yet, and says so in warnings', async () => {
    const create = (zone: string, plugin: string) =>
      admin.expect(201, 'POST', `/v1/zones/${zone}/providers`, { name: `p-${zone}-${plugin.length}`, plugin });
    const nowhere = await create('zone-empty', '@cairn/plugin-dummy');
    expect(nowhere.warnings.map((w: { code: string }) => w.code)).toEqual(['no_agent_in_zone']);
    expect(nowhere.warnings[0].message).toContain('zone-empty');
    const noPlugin = await create('zone-a', '@cairn/plugin-absent');
    expect(noPlugin.warnings.map((w: { code: string }) => w.code)).toEqual(['plugin_not_in_zone']);
    expect(noPlugin.warnings[0].message).toContain('@cairn/plugin-absent');
    // Made all the same: the connection exists.
    await admin.expect(200, 'GET', `/v1/zones/zone-a/providers/${noPlugin.id}`);
    // An agent of the zone that runs the plugin is connected: nothing to warn of.
    expect((await create('zone-a', '@cairn/plugin-dummy')).warnings).toEqual([]);
  });
});
