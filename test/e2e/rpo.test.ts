import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { eventsOf } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { assignOffering, backup } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

// Fires only on 1 January (a schedule must fire once a year): none happens while the clock moves through June.
const NEVER = '0 2 1 1 *';
const at = (hhmmss: string) => `2026-06-01T${hhmmss}Z`;
const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The value of an unlabelled metric of `/metrics`, or undefined when it is absent. */
async function metric(cp: ControlPlaneProc, name: string): Promise<number | undefined> {
  const text = await metricsText(cp);
  for (const line of text.split('\n')) {
    const m = /^(\w+) (\S+)$/.exec(line);
    if (m && m[1] === name) return Number(m[2]);
  }
  return undefined;
}

const metricsText = async (cp: ControlPlaneProc) => (await fetch(`${cp.url}/metrics`)).text();

/** A tenant, an SLA offering granted to it (rpoMinutes 60, ad-hoc allowed), and `n` instances on it. */
async function setUp(admin: Api, n: number, name: string) {
  const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name })).id as string;
  const tenant = new Api(
    admin.url,
    (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-admin', name: 't' })).token,
  );
  const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
    name: `${name}-fast`,
    plugin: '@cairn/plugin-dummy',
    tenantLocators: 'any',
    config: { durationMs: 0, steps: 1, sizeBytes: 1000 },
  });
  const offering = await admin.expect(201, 'POST', '/v1/offerings', {
    name: `${name}-rpo`,
    zone: 'zone-a',
    providerId: provider.id,
    allowAdhoc: true,
    allowUserSchedules: false,
    sla: { cron: NEVER, timezone: 'UTC', keepLast: 10, rpoMinutes: 60 },
  });
  await admin.expect(201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = await admin.expect(201, 'POST', '/v1/instances', {
      name: `${name}-${i}`,
      zone: 'zone-a',
      locator: { vm: `${name}-${i}` },
      tenantId,
    });
    await assignOffering(tenant, row.id, offering.id);
    ids.push(row.id as string);
  }
  return { tenantId, tenant, offeringId: offering.id as string, ids };
}

async function backUp(api: Api, instanceId: string) {
  expect((await backup(api, instanceId)).state).toBe('succeeded');
}

/** The gauges read from the store at every scrape: each step's figures are checked right after it. */
const FRESH_GAUGES = { CAIRN_METRICS_STORE_REFRESH_MS: '0' };

describe.each(backends)('the RPO watch on %s', (backend) => {
  const stack = withStack(backend, { clockAt: at('00:00:00'), agents: [{ name: 'rpo-host' }], env: FRESH_GAUGES });
  let cp: ControlPlaneProc;
  let admin: Api;

  const step = (hhmmss: string) => stack.step(at(hhmmss));
  const count = async (type: string, id: string) => (await eventsOf(admin, type, id)).length;

  beforeAll(() => {
    ({ cp, admin } = stack);
  });

  it('raises rpo.breached once past rpoMinutes without a backup, rpo.met once after a backup, across a restart, with the gauges', async () => {
    const { tenantId, tenant, ids } = await setUp(admin, 1, 'rpo');
    const id = ids[0]!;
    // Assigned at 00:00: without a restore point it is measured from there; exactly 60 min is still met.
    await step('00:59:00');
    await step('01:00:00');
    expect(await count('rpo.breached', id)).toBe(0);
    expect(await metric(cp, 'cairn_rpo_breached_instances')).toBe(0);

    await step('01:00:01');
    const breached = await eventsOf(tenant, 'rpo.breached', id);
    expect(breached).toHaveLength(1);
    expect(breached[0]).toMatchObject({
      tenantId,
      instanceId: id,
      data: { rpoMinutes: 60, lastBackupAt: null, breachedAt: '2026-06-01T01:00:01.000Z' },
    });
    expect(await metric(cp, 'cairn_rpo_breached_instances')).toBe(1);
    expect(await metric(cp, 'cairn_oldest_last_backup_timestamp_seconds')).toBeNaN();
    // The tenant's usage counts it in breach; the SP's shows it under that tenant.
    const usageOf = async (api: Api) =>
      ((await api.expect(200, 'GET', '/v1/usage?limit=500')).items as { tenantId: string }[]).find(
        (u) => u.tenantId === tenantId,
      );
    expect(await usageOf(tenant)).toMatchObject({ protectedInstances: 1, rpoBreachedInstances: 1 });
    expect(await usageOf(admin)).toMatchObject({ rpoBreachedInstances: 1 });
    // /metrics has no token: it names no tenant and no instance.
    for (const secret of [tenantId, id]) expect(await metricsText(cp)).not.toContain(secret);

    // Later ticks, and a restarted control plane, raise nothing more.
    for (const t of ['01:10:00', '01:30:00']) await step(t);
    await cp.proc.stop();
    // On the same port: the agent reconnects to it.
    cp = await stack.controlPlane({ port: cp.port });
    admin = stack.adminOf(cp);
    const tenantAgain = stack.api(tenant.token, cp);
    await step('02:00:00');
    expect(await count('rpo.breached', id)).toBe(1);

    // A backup made at 02:00 by the clock recovers it, once.
    await backUp(tenantAgain, id);
    for (const t of ['02:00:05', '02:30:00', '03:00:00']) await step(t);
    const met = await eventsOf(tenantAgain, 'rpo.met', id);
    expect(met).toHaveLength(1);
    expect(met[0]).toMatchObject({
      tenantId,
      instanceId: id,
      data: {
        rpoMinutes: 60,
        lastBackupAt: '2026-06-01T02:00:00.000Z',
        breachedAt: '2026-06-01T01:00:01.000Z',
        // The first tick after the backup: still at 02:00, or at 02:00:05 if none ran before the step.
        metAt: expect.stringMatching(/^2026-06-01T02:00:0[05]\.000Z$/) as string,
      },
    });
    expect(await count('rpo.breached', id)).toBe(1);
    expect(await metric(cp, 'cairn_rpo_breached_instances')).toBe(0);
    expect(await usageOf(tenantAgain)).toMatchObject({ rpoBreachedInstances: 0 });
    expect(await metric(cp, 'cairn_oldest_last_backup_timestamp_seconds')).toBe(seconds(at('02:00:00')));
    for (const secret of [tenantId, id]) expect(await metricsText(cp)).not.toContain(secret);

    // The backup ages past 60 minutes: a new breach, again once.
    await step('03:00:01');
    await step('03:30:00');
    expect(await count('rpo.breached', id)).toBe(2);
    expect(await metric(cp, 'cairn_rpo_breached_instances')).toBe(1);

    // Without its offering the instance is no longer watched: the breach goes quietly.
    await tenantAgain.expect(204, 'DELETE', `/v1/instances/${id}/offering`);
    await step('04:00:00');
    expect(await metric(cp, 'cairn_rpo_breached_instances')).toBe(0);
    expect(await usageOf(tenantAgain)).toMatchObject({
      protectedInstances: 0,
      unprotectedInstances: 1,
      rpoBreachedInstances: 0,
    });
    expect(await count('rpo.met', id)).toBe(1);
    // Its restore point is still there, and still shown.
    expect(await metric(cp, 'cairn_oldest_last_backup_timestamp_seconds')).toBe(seconds(at('02:00:00')));
  });
});

// Replicas share one MySQL database; SQLite is the single-process quick start.
describe.runIf(backends.includes('mysql'))('the RPO watch on two control-plane replicas of one MySQL database', () => {
  const N = 20;
  const stack = withStack('mysql', {
    clockAt: at('00:00:00'),
    replicas: 2,
    agents: [{ name: 'rpo-replica-host' }],
    env: FRESH_GAUGES,
  });

  it(`raises each event once for each of ${N} instances while both replicas watch`, async () => {
    const [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
    const admin = stack.adminOf(b);
    const { tenantId, tenant, ids } = await setUp(admin, N, 'replicas');
    const step = (hhmmss: string) => stack.step(at(hhmmss));
    for (const t of ['01:00:01', '01:00:02', '01:10:00']) await step(t);
    for (const id of ids) expect(await eventsOf(admin, 'rpo.breached', id)).toHaveLength(1);
    expect(await metric(a, 'cairn_rpo_breached_instances')).toBe(N);
    expect(await metric(b, 'cairn_rpo_breached_instances')).toBe(N);
    expect(await metricsText(a)).not.toContain(tenantId);

    for (const id of ids) await backUp(tenant, id);
    for (const t of ['01:10:01', '01:10:02', '01:20:00']) await step(t);
    for (const id of ids) {
      expect(await eventsOf(admin, 'rpo.met', id)).toHaveLength(1);
      expect(await eventsOf(admin, 'rpo.breached', id)).toHaveLength(1);
    }
    expect(await metric(a, 'cairn_rpo_breached_instances')).toBe(0);
  });
});
