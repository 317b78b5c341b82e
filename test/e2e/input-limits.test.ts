import { beforeAll, describe, expect, it } from 'vitest';
import { Api, type Reply } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

/** `{"a":{"a":...{}}}` with `depth` nested objects. */
const nested = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
/** A JSON object of exactly `bytes` UTF-8 bytes: `{"s":"xxx…"}`. */
const ofBytes = (bytes: number) => ({ s: 'x'.repeat(bytes - '{"s":""}'.length) });
const paths = (r: Reply) => ((r.body?.errors ?? []) as { path: string; message: string }[]).map((e) => e.path);
const brief = (r: Reply) => JSON.stringify(r.body).slice(0, 300);
const messages = (r: Reply) => ((r.body?.errors ?? []) as { message: string }[]).map((e) => e.message).join('; ');

function expect400(r: Reply, path: string, message?: RegExp) {
  expect(r.status, brief(r)).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(paths(r)).toContain(path);
  if (message) expect(messages(r)).toMatch(message);
}

/** Every item of a list, following nextCursor with pages of `limit`. */
async function walk(api: Api, route: string, limit: number): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 10_000; pages++) {
    const sep = route.includes('?') ? '&' : '?';
    const q = `${sep}limit=${limit}${cursor !== undefined ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api.expect(200, 'GET', `${route}${q}`);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    if (!page.nextCursor) return { items, pages };
    cursor = page.nextCursor;
  }
  throw new Error(`${route}: the walk never ended`);
}
const key = (item: any) => (typeof item.id === 'string' ? item.id : JSON.stringify(item));

describe.each(backends)('the API bounds what it accepts, the same on every backend (%s)', (backend) => {
  const stack = withStack(backend, { serverCollation: true, agents: [{ name: 'host-a' }] });
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let taskId: string;
  let tenantLists: string[];
  let adminLists: string[];

  const everyListAnswers = async () => {
    for (const route of tenantLists) expect((await tenant.get(route)).status, `tenant ${route}`).toBe(200);
    for (const route of [...tenantLists, ...adminLists])
      expect((await admin.get(route)).status, `sp-admin ${route}`).toBe(200);
  };
  const instanceIds = async (api: Api) => (await walk(api, '/v1/instances', 500)).items.map(key).sort();
  const providerNames = async () => (await walk(admin, '/v1/zones/zone-a/providers', 500)).items.map((p) => p.name);

  beforeAll(async () => {
    // Created with the server's default collation (case- and accent-folding on MariaDB), as an
    // operator creating the database by hand would: the uniqueness rule must not depend on it.
    ({ admin } = stack);
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    tenantId = t.id;
    const tok = await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name: 'ops' });
    tenant = stack.api(tok.token);
    // Three backups of the tenant, each with several progress reports, for the lists to page over.
    const tasks: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await protectInstance(admin, 'zone-a', { config: { durationMs: 150, steps: 5 } });
      await admin.expect(201, 'POST', `/v1/offerings/${p.offeringId}/grants`, { tenantId });
      const own = await tenant.expect(201, 'POST', '/v1/instances', { name: `own-${i}`, zone: 'zone-a', locator: {} });
      await tenant.expect(200, 'PUT', `/v1/instances/${own.id}/offering`, { offeringId: p.offeringId });
      tasks.push((await tenant.expect(202, 'POST', `/v1/instances/${own.id}/backups`)).id);
    }
    for (const id of tasks) expect((await waitForTask(tenant, id, ['succeeded', 'failed'])).state).toBe('succeeded');
    taskId = tasks[0]!;
    // Agents that enrolled but never connected: the agent list has several entries.
    for (let i = 0; i < 3; i++) await stack.enrollIdle('zone-b', `idle-${i}`);
    tenantLists = [
      '/v1/instances',
      '/v1/offerings',
      '/v1/backups',
      '/v1/tasks',
      `/v1/tasks/${taskId}/progress`,
      '/v1/events',
    ];
    adminLists = ['/v1/tenants', '/v1/agents', '/v1/zones/zone-a/providers', '/v1/usage'];
  });

  it('refuses free-form JSON nested deeper than 32 levels with a 400, writes nothing, and every list still answers', async () => {
    const before = { tenant: await instanceIds(tenant), admin: await instanceIds(admin) };
    const create = (locator: string) =>
      tenant.call('POST', '/v1/instances', `{"name":"deep","zone":"zone-a","locator":${locator}}`);
    const ok = await create(nested(32));
    expect(ok.status, brief(ok)).toBe(201);
    expect400(await create(nested(33)), 'locator', /32/);
    expect400(await create(nested(4113)), 'locator', /32/);
    expect400(await create(`[${nested(4112)}]`), 'locator', /32/);
    const provider = (field: string, value: string) =>
      admin.call(
        'POST',
        '/v1/zones/zone-a/providers',
        `{"name":"deep-${field}","plugin":"@cairn/plugin-dummy","${field}":${value}}`,
      );
    expect400(await provider('config', nested(33)), 'config', /32/);
    expect400(await provider('credentials', nested(4113)), 'credentials', /32/);
    expect(await providerNames()).not.toEqual(expect.arrayContaining(['deep-config']));
    expect(await providerNames()).not.toEqual(expect.arrayContaining(['deep-credentials']));
    expect(await instanceIds(tenant)).toEqual([...before.tenant, ok.body.id].sort());
    expect(await instanceIds(admin)).toEqual([...before.admin, ok.body.id].sort());
    await everyListAnswers();
  });

  it('bounds free-form JSON at 16384 bytes (UTF-8) with the same 400 on every backend', async () => {
    const create = (locator: unknown) => tenant.post('/v1/instances', { name: 'big', zone: 'zone-a', locator });
    const atLimit = await create(ofBytes(16_384));
    expect(atLimit.status, brief(atLimit)).toBe(201);
    expect((await tenant.expect(200, 'GET', `/v1/instances/${atLimit.body.id}`)).locator).toEqual(ofBytes(16_384));
    const before = await instanceIds(admin);
    expect400(await create(ofBytes(16_385)), 'locator', /16384 bytes/);
    expect400(await create(ofBytes(70_000)), 'locator', /16384 bytes/);
    // Two bytes a character: 8,193 é are 16,386 bytes.
    expect400(await create({ s: 'é'.repeat(8_193) }), 'locator', /16384 bytes/);
    const provider = (body: Record<string, unknown>) =>
      admin.post('/v1/zones/zone-a/providers', {
        name: 'fat',
        plugin: '@cairn/plugin-dummy',
        tenantLocators: 'any',
        ...body,
      });
    expect400(await provider({ config: ofBytes(70_000) }), 'config', /16384 bytes/);
    expect400(await provider({ credentials: ofBytes(70_000) }), 'credentials', /16384 bytes/);
    expect(await providerNames()).not.toContain('fat');
    const slim = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'slim',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: {},
    });
    const patch = (body: Record<string, unknown>) => admin.call('PATCH', `/v1/zones/zone-a/providers/${slim.id}`, body);
    expect400(await patch({ config: ofBytes(70_000) }), 'config', /16384 bytes/);
    expect400(await patch({ credentials: ofBytes(70_000) }), 'credentials', /16384 bytes/);
    expect((await admin.expect(200, 'GET', `/v1/zones/zone-a/providers/${slim.id}`)).config).toEqual({});
    expect(await instanceIds(admin)).toEqual(before);
    await everyListAnswers();
  });

  it('never cuts text: 80 KB of é is refused with a 400, and text within the limits is stored whole', async () => {
    const eighty = 'é'.repeat(40_000);
    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'text',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
    });
    const offering = (body: Record<string, unknown>) =>
      admin.post('/v1/offerings', {
        name: 'o',
        zone: 'zone-a',
        providerId: provider.id,
        allowAdhoc: true,
        allowUserSchedules: false,
        ...body,
      });
    expect400(await offering({ description: eighty }), 'description');
    expect400(await offering({ externalId: eighty }), 'externalId');
    expect400(await offering({ sla: { cron: `0 2 * * * ${eighty}`, keepLast: 1 } }), 'sla.cron');
    expect400(await offering({ sla: { cron: '0 2 * * *', timezone: eighty, keepLast: 1 } }), 'sla.timezone');
    expect400(await offering({ name: eighty }), 'name');
    expect400(
      await admin.post('/v1/zones/zone-a/providers', {
        name: 'e',
        plugin: '@cairn/plugin-dummy',
        tenantLocators: 'any',
        endpoint: eighty,
      }),
      'endpoint',
    );
    expect400(await tenant.post('/v1/instances', { name: 'n', zone: 'zone-a', locator: { note: eighty } }), 'locator');
    expect400(await tenant.post('/v1/instances', { name: eighty, zone: 'zone-a', locator: {} }), 'name');
    // The column limits are characters: 200 two-byte or four-byte characters fit and come back whole.
    for (const name of ['é'.repeat(200), '😀'.repeat(200)]) {
      const made = await tenant.post('/v1/instances', { name, zone: 'zone-a', locator: {} });
      expect(made.status, brief(made)).toBe(201);
      expect((await tenant.expect(200, 'GET', `/v1/instances/${made.body.id}`)).name).toBe(name);
    }
    expect400(await tenant.post('/v1/instances', { name: 'é'.repeat(201), zone: 'zone-a', locator: {} }), 'name');
    const description = 'é'.repeat(2000);
    const made = await offering({ description });
    expect(made.status, brief(made)).toBe(201);
    expect((await admin.expect(200, 'GET', `/v1/offerings/${made.body.id}`)).description).toBe(description);
    await everyListAnswers();
  });

  it('refuses a null locator', async () => {
    const before = await instanceIds(tenant);
    expect400(await tenant.post('/v1/instances', { name: 'nil', zone: 'zone-a', locator: null }), 'locator');
    expect(await instanceIds(tenant)).toEqual(before);
  });

  it('refuses __proto__, constructor and prototype keys in free-form objects instead of dropping them', async () => {
    const provider = (name: string, field: string, value: string) =>
      admin.call(
        'POST',
        '/v1/zones/zone-a/providers',
        `{"name":"${name}","plugin":"@cairn/plugin-dummy","${field}":${value}}`,
      );
    expect400(await provider('proto', 'config', '{"__proto__":{"polluted":true}}'), 'config.__proto__');
    expect400(await provider('ctor', 'config', '{"constructor":{"prototype":{}}}'), 'config.constructor');
    expect400(await provider('deep', 'credentials', '{"a":[{"prototype":1}]}'), 'credentials.a.0.prototype');
    expect(await providerNames()).not.toEqual(expect.arrayContaining(['proto', 'ctor', 'deep']));
    const instance = await tenant.call(
      'POST',
      '/v1/instances',
      '{"name":"p","zone":"zone-a","locator":{"vm":{"__proto__":{"x":1}}}}',
    );
    expect400(instance, 'locator.vm.__proto__');
  });

  it('refuses names that are empty to the eye, hold control characters or lone surrogates', async () => {
    const bad = ['\u200b\u200b', '\u200b \u2060\ufeff', '\u3164', 'a\u0007b', 'line\nbreak', 'a\ud800b', '\udc00'];
    for (const name of bad) {
      const what = JSON.stringify(name);
      expect400(await admin.post('/v1/tenants', { name }), 'name');
      expect400(await tenant.post('/v1/instances', { name, zone: 'zone-a', locator: {} }), 'name');
      const p = await admin.post('/v1/zones/zone-a/providers', { name, plugin: '@cairn/plugin-dummy' });
      expect(p.status, what).toBe(400);
    }
    const names = (await walk(admin, '/v1/tenants', 500)).items.map((t) => t.name as string);
    for (const name of bad) expect(names).not.toContain(name.trim());
  });

  it('treats names as one when they are the same after NFC, and as two when case or accents differ', async () => {
    const nfc = 'Caf\u00e9';
    const nfd = 'Cafe\u0301';
    const first = await admin.expect(201, 'POST', '/v1/tenants', { name: nfd });
    expect(first.name).toBe(nfc);
    expect((await admin.post('/v1/tenants', { name: nfc })).status).toBe(409);
    expect((await admin.expect(201, 'POST', '/v1/tenants', { name: 'Cafe' })).name).toBe('Cafe');
    expect((await admin.expect(201, 'POST', '/v1/tenants', { name: 'cafe' })).name).toBe('cafe');
    const names = (await walk(admin, '/v1/tenants', 500)).items.map((t) => t.name as string);
    expect(names.filter((n) => n.toLowerCase().normalize('NFD').startsWith('cafe')).sort()).toEqual(
      ['Cafe', 'cafe', nfc].sort(),
    );
    const provider = (name: string) =>
      admin.post('/v1/zones/zone-a/providers', { name, plugin: '@cairn/plugin-dummy' });
    expect((await provider(nfc)).status).toBe(201);
    expect((await provider(nfd)).status).toBe(409);
    expect((await provider('Store')).status).toBe(201);
    expect((await provider('store')).status).toBe(201);
    expect((await provider('Cafe')).status).toBe(201);
  });

  it('pages every list the same way: limit 1-500, an opaque cursor, and a walk visits every item once', async () => {
    for (const [api, routes] of [
      [tenant, tenantLists],
      [admin, [...tenantLists, ...adminLists]],
    ] as const) {
      for (const route of routes) {
        const sep = route.includes('?') ? '&' : '?';
        for (const limit of ['0', '-1', '501', 'ten', '1.5']) {
          expect400(await api.get(`${route}${sep}limit=${limit}`), 'query.limit');
        }
        for (const cursor of ['garbage', '%%%', 'dGFza19ub3Rfb3Vycw']) {
          expect400(await api.get(`${route}${sep}cursor=${cursor}`), 'query.cursor');
        }
        const full = await walk(api, route, 500);
        const small = await walk(api, route, 2);
        const seen = small.items.map(key);
        expect(full.items.length, route).toBeGreaterThanOrEqual(3);
        expect(new Set(seen).size, `${route}: an item seen twice`).toBe(seen.length);
        expect(seen, route).toEqual(expect.arrayContaining(full.items.map(key)));
        expect(small.pages, route).toBeGreaterThanOrEqual(Math.ceil(full.items.length / 2));
        expect((await api.expect(200, 'GET', route)).items.length).toBeLessThanOrEqual(50);
      }
      expect400(await api.get('/v1/events?after=1&cursor=1'), 'query.after');
    }
  });
});
