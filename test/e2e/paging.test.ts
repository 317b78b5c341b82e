import { beforeAll, describe, expect, it } from 'vitest';
import { Api, type Reply } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/** Spellings of a number that `Number()` reads but the paging rule refuses, and numbers out of range. */
const BAD_LIMITS = ['0x10', '%20%207', '7%20', '1e1', '+5', '-1', '007', '1.0', '0', '501', '', 'ten', '１０'];
const GOOD_LIMITS = ['1', '7', '50', '500'];

const brief = (r: Reply) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

function expectBad(r: Reply, field: 'query.limit' | 'query.cursor', what: string) {
  expect(r.status, `${what}: ${brief(r)}`).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(
    (r.body.errors as { path: string }[]).map((e) => e.path),
    what,
  ).toContain(field);
  if (field === 'query.cursor') expect(r.body.code, what).toBe('bad_cursor');
}

/** Items by id where they have one (agents' and jobs' other fields move on their own). */
const key = (item: { id?: unknown }) => (item.id !== undefined ? String(item.id) : JSON.stringify(item));

const withQuery = (route: string, query: string) => `${route}${route.includes('?') ? '&' : '?'}${query}`;

describe.each(backends)('paging: one strict rule on every list (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-a' }] });
  let admin: Api;
  let tenant: Api;
  /** Every paged list, with who reads it. */
  let lists: { api: Api; who: string; route: string }[];
  /** The first page's nextCursor (limit=1) of each list that has a second page. */
  const firstCursors = new Map<string, string>();

  beforeAll(async () => {
    ({ admin } = stack);
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    for (const name of ['globex', 'initech']) await admin.expect(201, 'POST', '/v1/tenants', { name });
    const tok = await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name: 'ops' });
    for (const name of ['ci', 'ro'])
      await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-user', name });
    tenant = stack.api(tok.token);
    for (let i = 0; i < 2; i++) await stack.enrollIdle('zone-b', `idle-${i}`);
    const instanceIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await protectInstance(admin, 'zone-a', { config: { durationMs: 150, steps: 5 } });
      await admin.expect(201, 'POST', `/v1/offerings/${p.offeringId}/grants`, { tenantId: t.id });
      const own = await tenant.expect(201, 'POST', '/v1/instances', { name: `own-${i}`, zone: 'zone-a', locator: {} });
      await tenant.expect(200, 'PUT', `/v1/instances/${own.id}/offering`, { offeringId: p.offeringId });
      instanceIds.push(own.id);
    }
    const jobIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await tenant.expect(201, 'POST', '/v1/backup-jobs', {
        name: `job-${i}`,
        instanceIds,
        mode: 'FULL',
        execution: 'SEQUENTIAL',
      });
      jobIds.push(job.id);
    }
    // Three runs of one job: three runs, nine backup tasks with their progress, nine backups.
    for (let run = 0; run < 3; run++) {
      await tenant.expect(202, 'POST', `/v1/backup-jobs/${jobIds[0]}/run`);
      await waitFor(
        async () => (await tenant.expect(200, 'GET', `/v1/backup-jobs/${jobIds[0]}`)).lastRun?.state !== 'running',
        'the job run to end',
        60_000,
      );
    }
    const tasks = (await tenant.expect(200, 'GET', '/v1/tasks?kind=backup&limit=500')).items as { id: string }[];
    expect(tasks.length).toBeGreaterThanOrEqual(9);
    for (const task of tasks) expect((await waitForTask(tenant, task.id, ['succeeded'])).state).toBe('succeeded');

    const [lastRun] = (await tenant.expect(200, 'GET', `/v1/backup-jobs/${jobIds[0]}/runs?limit=1`)).items;
    const tenantRoutes = [
      '/v1/instances',
      '/v1/offerings',
      '/v1/backups',
      `/v1/backups?instanceId=${instanceIds[0]}`,
      '/v1/tasks',
      '/v1/tasks?kind=backup',
      `/v1/tasks/${tasks[0]!.id}/progress`,
      `/v1/tasks/${tasks[1]!.id}/progress`,
      '/v1/events',
      '/v1/backup-jobs',
      `/v1/backup-jobs/${jobIds[0]}/runs`,
      `/v1/backup-jobs/${jobIds[0]}/runs/${lastRun.id}/members`,
      `/v1/tenants/${t.id}/tokens`,
      '/v1/usage',
    ];
    const adminRoutes = ['/v1/tenants', '/v1/agents', '/v1/zones/zone-a/providers', '/v1/usage', '/v1/instances'];
    lists = [
      ...tenantRoutes.map((route) => ({ api: tenant, who: 'tenant', route })),
      ...adminRoutes.map((route) => ({ api: admin, who: 'sp-admin', route })),
    ];
    for (const { api, who, route } of lists) {
      const page = await api.expect(200, 'GET', withQuery(route, 'limit=1'));
      if (page.nextCursor) firstCursors.set(`${who} ${route}`, page.nextCursor);
    }
    // Every list but a tenant's own usage (one row) has a second page to point at.
    expect(firstCursors.size).toBe(lists.length - 1);
  }, 120_000);

  it('takes only a plain decimal limit of 1-500 on every list', async () => {
    for (const { api, who, route } of lists) {
      for (const limit of BAD_LIMITS) {
        expectBad(await api.get(withQuery(route, `limit=${limit}`)), 'query.limit', `${who} ${route} limit=${limit}`);
      }
      for (const limit of GOOD_LIMITS) {
        const r = await api.get(withQuery(route, `limit=${limit}`));
        expect(r.status, `${who} ${route} limit=${limit}: ${brief(r)}`).toBe(200);
        expect(r.body.items.length).toBeLessThanOrEqual(Number(limit));
      }
    }
    // The same spelling rule holds for the event log's position.
    for (const after of ['0x10', '1e1', '%2B1', '01'])
      expect((await tenant.get(`/v1/events?after=${after}`)).status, `after=${after}`).toBe(400);
  });

  it('takes back only a cursor that the same list handed out: forged ones and other lists’ are 400 bad_cursor', async () => {
    const sample = [...firstCursors.values()].find((c) => c.includes('.'))!;
    const [inner, mac] = sample.split('.') as [string, string];
    const forged = [
      'MTIz', // base64url of "123"
      'garbage',
      '%%%',
      inner, // a real position without its seal
      `${inner}.`,
      `${inner}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`,
      `${Buffer.from('123').toString('base64url')}.${mac}`,
      `${inner}.${mac}.${mac}`,
    ];
    for (const { api, who, route } of lists) {
      for (const cursor of forged) {
        expectBad(
          await api.get(withQuery(route, `cursor=${encodeURIComponent(cursor)}`)),
          'query.cursor',
          `${who} ${route} cursor=${cursor}`,
        );
      }
      for (const [from, cursor] of firstCursors) {
        const fromRoute = from.split(' ')[1]!;
        // The same path (whoever reads it, whatever its filters) is the same list.
        if (fromRoute.split('?')[0] === route.split('?')[0]) continue;
        expectBad(
          await api.get(withQuery(route, `cursor=${encodeURIComponent(cursor)}`)),
          'query.cursor',
          `${who} ${route} with the cursor of ${from}`,
        );
      }
    }
  });

  it('walks every list one item a page with the cursors it handed out, each item once', async () => {
    for (const { api, who, route } of lists) {
      const all = (await api.expect(200, 'GET', withQuery(route, 'limit=500'))).items as { id?: unknown }[];
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const r: Reply = await api.get(
          withQuery(route, `limit=1${cursor !== null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
        );
        expect(r.status, `${who} ${route}: ${brief(r)}`).toBe(200);
        seen.push(...(r.body.items as { id?: unknown }[]).map(key));
        cursor = r.body.nextCursor;
      } while (cursor !== null && seen.length <= all.length);
      expect(seen, `${who} ${route}`).toEqual(all.map(key));
    }
  });
});
