/**
 * Many user schedules at once, stored as the product stores them (next fire time not computed:
 * the scheduler's next tick does it): for the scale test and the schedules benchmark.
 */
import { openStore, type Store } from '@cairn/control-plane';
import { Api } from './api.js';
import type { ControlPlaneProc } from './processes.js';
import { assignOffering } from './scenario.js';

/**
 * Expressions and their fire times in (2026-03-28T18:00Z, 2026-03-29T06:00Z], twelve hours across
 * the change to summer time in Paris (2026-03-29T01:00Z), counted by hand: the latest and how many.
 */
export const SCALE_KINDS = [
  // Every quarter hour: 48 fire times, the last at 06:00Z.
  { cron: '*/15 * * * *', timezone: 'UTC', fireAt: '2026-03-29T06:00:00.000Z', fires: 48 },
  // Every hour in Paris: each UTC hour is one local hour (02:00 local is skipped, 03:00 is 01:00Z).
  { cron: '0 * * * *', timezone: 'Europe/Paris', fireAt: '2026-03-29T06:00:00.000Z', fires: 12 },
  // 02:30 local does not exist on 29 March in Paris: it fires at the change, 01:00Z.
  { cron: '30 2 * * *', timezone: 'Europe/Paris', fireAt: '2026-03-29T01:00:00.000Z', fires: 1 },
  // Even hours in New York (EDT, UTC-4): 20, 22, 00, 02, 04, 06 Z.
  { cron: '0 */2 * * *', timezone: 'America/New_York', fireAt: '2026-03-29T06:00:00.000Z', fires: 6 },
];

/**
 * A tenant with one instance on an offering of the dummy plugin that allows user schedules (no
 * schedule set yet), made through the API. `rpoMinutes`: the offering also has an SLA with that RPO
 * (its own schedule fires only on 1 January).
 */
export async function scheduledInstance(
  admin: Api,
  opts: { rpoMinutes?: number } = {},
): Promise<{ tenantId: string; offeringId: string; instanceId: string }> {
  const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'many' })).id as string;
  const providerId = (
    await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'p',
      plugin: '@cairn/plugin-dummy',
      tenantLocators: 'any',
      config: { durationMs: 0, steps: 1, sizeBytes: 1000 },
    })
  ).id as string;
  const offeringId = (
    await admin.expect(201, 'POST', '/v1/offerings', {
      name: 'self',
      zone: 'zone-a',
      providerId,
      allowAdhoc: false,
      allowUserSchedules: true,
      ...(opts.rpoMinutes
        ? { sla: { cron: '0 2 1 1 *', timezone: 'UTC', keepLast: 3, rpoMinutes: opts.rpoMinutes } }
        : {}),
    })
  ).id as string;
  await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId });
  const instanceId = (
    await admin.expect(201, 'POST', '/v1/instances', {
      name: 'i-0',
      zone: 'zone-a',
      locator: { vm: 'i-0' },
      tenantId,
    })
  ).id as string;
  await assignOffering(admin, instanceId, offeringId);
  return { tenantId, offeringId, instanceId };
}

/**
 * One tenant, provider, offering (allowing user schedules) and `count` instances on it, each with
 * a user schedule of `kinds` in turn, set at `t0`. The first instance is made through the API,
 * the others and every schedule in bulk. Answers the store (close it) and the instance ids.
 * `rpoMinutes`: the offering also has an SLA with that RPO (its own schedule fires only on
 * 1 January), so every instance is under the RPO watch.
 */
export async function manySchedules(
  cp: ControlPlaneProc,
  databaseUrl: string,
  count: number,
  kinds: readonly { cron: string; timezone: string }[],
  t0: string,
  opts: { rpoMinutes?: number } = {},
): Promise<{ store: Store; ids: string[] }> {
  const admin = new Api(cp.url, cp.adminToken);
  const { tenantId, instanceId } = await scheduledInstance(admin, opts);
  const first = { id: instanceId };
  const store = openStore(databaseUrl);
  const template = (await store.db.selectFrom('instances').selectAll().where('id', '=', first.id).executeTakeFirst())!;
  const setAt = Date.parse(t0);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(i === 0 ? first.id : `ins_scale_${String(i).padStart(5, '0')}`);
  for (let i = 0; i < count; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const others = chunk.filter((id) => id !== first.id);
    if (others.length > 0)
      await store.db
        .insertInto('instances')
        .values(others.map((id) => ({ ...template, id, name: id, locator: JSON.stringify({ vm: id }) })))
        .execute();
    await store.db
      .insertInto('userSchedules')
      .values(
        chunk.map((instanceId, j) => {
          const k = kinds[(i + j) % kinds.length]!;
          return {
            instanceId,
            tenantId,
            cron: k.cron,
            timezone: k.timezone,
            keepLast: 3,
            createdAt: setAt,
            updatedAt: setAt,
          };
        }),
      )
      .execute();
  }
  // The tenant's instances and user schedules, as its quotas keep them counted (the first
  // instance was made through the API, and counted then).
  const kept = ['instances', 'userSchedules'];
  await store.db.deleteFrom('tenantCounts').where('tenantId', '=', tenantId).where('quota', 'in', kept).execute();
  await store.db
    .insertInto('tenantCounts')
    .values(kept.map((quota) => ({ tenantId, quota, used: count })))
    .execute();
  // The first schedule set again through the API (the same expression; a replacement, which no
  // quota counts): the control plane learns that schedules changed and reads them all at its next
  // tick. (Of rows written only to the store, as above, it learns within its probe's refresh.)
  const k = kinds[0]!;
  await admin.expect(200, 'PUT', `/v1/instances/${first.id}/schedule`, {
    cron: k.cron,
    timezone: k.timezone,
    keepLast: 3,
  });
  return { store, ids };
}
