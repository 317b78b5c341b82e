import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

// A provider connection may name another of its zone as its export target (`exportTo`): one hop,
// never itself, never a chain; the named one cannot be deleted while it is named.
describe.each(backends)('provider connections: exportTo (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let admin: Api;
  let count = 0;
  const route = (zone: string, id = '') => `/v1/zones/${zone}/providers${id ? `/${id}` : ''}`;
  const create = (zone: string, extra: Record<string, unknown> = {}) =>
    admin.call('POST', route(zone), {
      name: `p-${++count}`,
      plugin: '@cairn/plugin-restic',
      endpoint: '/srv/r',
      ...extra,
    });
  const made = async (zone: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const r = await create(zone, extra);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.id as string;
  };
  const names = async (zone: string) =>
    ((await admin.expect(200, 'GET', route(zone))).items as { name: string; exportTo: string | null }[]).map(
      (p) => `${p.name}>${p.exportTo}`,
    );
  const refusedNaming = (r: { status: number; body: any }, detail: RegExp) => {
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body).toMatchObject({ errors: [{ path: 'exportTo' }] });
    expect(r.body.detail).toMatch(detail);
  };

  beforeAll(() => {
    admin = env.admin;
  });

  it('is set on create, shown by get and list, cleared by PATCH null', async () => {
    const target = await made('zone-a');
    const id = await made('zone-a', { plugin: '@cairn/plugin-csi', endpoint: null, exportTo: target });
    expect((await admin.expect(200, 'GET', route('zone-a', id))).exportTo).toBe(target);
    expect((await admin.expect(200, 'GET', route('zone-a', target))).exportTo).toBeNull();
    expect(await names('zone-a')).toContain(`p-${count}>${target}`);
    expect((await admin.expect(200, 'PATCH', route('zone-a', id), { exportTo: null })).exportTo).toBeNull();
    expect((await admin.expect(200, 'PATCH', route('zone-a', id), { exportTo: target })).exportTo).toBe(target);
    // A PATCH without it keeps it.
    expect((await admin.expect(200, 'PATCH', route('zone-a', id), { name: 'renamed' })).exportTo).toBe(target);
  });

  it('refuses on create, 400 naming exportTo, nothing written: unknown, of another zone, not an id, a chain', async () => {
    const elsewhere = await made('zone-c');
    const target = await made('zone-b');
    const exporter = await made('zone-b', { exportTo: target });
    const before = await names('zone-b');
    refusedNaming(
      await create('zone-b', { exportTo: 'prv_01HZZZZZZZZZZZZZZZZZZZZZZZ' }),
      /names no provider connection of zone zone-b/,
    );
    refusedNaming(await create('zone-b', { exportTo: elsewhere }), /names no provider connection of zone zone-b/);
    refusedNaming(await create('zone-b', { exportTo: '../x' }), /names no provider connection/);
    refusedNaming(
      await create('zone-b', { exportTo: exporter }),
      new RegExp(`exports into ${target} itself: no chains`),
    );
    const typed = await create('zone-b', { exportTo: 42 });
    expect(typed.status).toBe(400);
    expect(JSON.stringify(typed.body.errors)).toContain('exportTo');
    expect(await names('zone-b')).toEqual(before);
  });

  it('refuses on PATCH, 400 naming exportTo, nothing written: itself, a chain either way', async () => {
    const a = await made('zone-d');
    const b = await made('zone-d', { exportTo: a });
    const c = await made('zone-d');
    const before = await names('zone-d');
    refusedNaming(await admin.call('PATCH', route('zone-d', c), { exportTo: c }), /cannot name the connection itself/);
    // c → b, while b exports into a: a chain.
    refusedNaming(await admin.call('PATCH', route('zone-d', c), { exportTo: b }), /no chains/);
    // a → c, while b exports into a: a would be a target that exports, a chain too.
    refusedNaming(
      await admin.call('PATCH', route('zone-d', a), { exportTo: c }),
      new RegExp(`this connection is the export target of provider connection ${b}`),
    );
    // Refused with another field in the same request: that one is not written either.
    refusedNaming(await admin.call('PATCH', route('zone-d', c), { name: 'moved', exportTo: c }), /itself/);
    expect(await names('zone-d')).toEqual(before);
  });

  it('refuses deleting a connection another names, 409 naming that one; after it is cleared, deletes', async () => {
    const target = await made('zone-e');
    const exporter = await made('zone-e', { exportTo: target });
    const r = await admin.call('DELETE', route('zone-e', target));
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'provider_in_use' });
    expect(r.body.detail).toBe(
      `provider connection ${target} is the export target (exportTo) of provider connection ${exporter}`,
    );
    expect((await admin.expect(200, 'GET', route('zone-e', target))).id).toBe(target);
    await admin.expect(200, 'PATCH', route('zone-e', exporter), { exportTo: null });
    await admin.expect(204, 'DELETE', route('zone-e', target));
  });
  // Each check reads the zone's links locked and current: concurrent changes run one after the
  // other, so no interleaving of them forms a chain or leaves a link to a deleted connection.
  it('concurrent PATCHes naming each other never both pass: no chain, whatever the interleaving', async () => {
    for (let round = 0; round < 12; round++) {
      const a = await made('zone-f');
      const b = await made('zone-f');
      const [ab, ba] = await Promise.all([
        admin.call('PATCH', route('zone-f', a), { exportTo: b }),
        admin.call('PATCH', route('zone-f', b), { exportTo: a }),
      ]);
      expect([ab.status, ba.status].sort(), JSON.stringify([ab.body, ba.body])).toEqual([200, 400]);
      const links = await Promise.all(
        [a, b].map(async (id) => (await admin.expect(200, 'GET', route('zone-f', id))).exportTo as string | null),
      );
      expect(links.filter((l) => l !== null)).toHaveLength(1);
    }
  });

  it('an exportTo set while its target is deleted: one of the two is refused, never a link to nothing', async () => {
    for (let round = 0; round < 12; round++) {
      const exporter = await made('zone-g');
      const target = await made('zone-g');
      const [patch, del] = await Promise.all([
        admin.call('PATCH', route('zone-g', exporter), { exportTo: target }),
        admin.call('DELETE', route('zone-g', target)),
      ]);
      const link = (await admin.expect(200, 'GET', route('zone-g', exporter))).exportTo as string | null;
      const targetThere = (await admin.call('GET', route('zone-g', target))).status === 200;
      if (patch.status === 200) {
        expect(del.status, JSON.stringify(del.body)).toBe(409);
        expect(link).toBe(target);
        expect(targetThere).toBe(true);
      } else {
        expect(patch.status, JSON.stringify(patch.body)).toBe(400);
        expect(del.status, JSON.stringify(del.body)).toBe(204);
        expect(link).toBeNull();
        expect(targetThere).toBe(false);
      }
    }
  });
});
