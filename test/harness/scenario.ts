import fs from 'node:fs';
import path from 'node:path';
import type { Api } from './api.js';
import { waitFor } from './wait.js';

export interface Protected {
  providerId: string;
  offeringId: string;
  instanceId: string;
}

let counter = 0;

/**
 * Through the API only: a dummy provider connection in `zone`, a native offering that allows
 * ad-hoc backups (with `sla` only when given), and an instance assigned to it.
 */
export async function protectInstance(
  api: Api,
  zone: string,
  opts: {
    config?: Record<string, unknown>;
    locator?: unknown;
    agentId?: string;
    sla?: { cron: string; keepLast: number; timezone?: string; rpoMinutes?: number };
    /** How often a tenant's schedule may fire, in seconds (the offering's default when not given). */
    minUserScheduleIntervalS?: number;
  } = {},
): Promise<Protected> {
  const n = ++counter;
  const provider = await api.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
    name: `dummy-${n}`,
    plugin: '@cairn/plugin-dummy',
    config: opts.config ?? {},
    credentials: { secret: 's3cret' },
    // The dummy's locators name nothing of the SP's: tenants may set their own.
    tenantLocators: 'any',
  });
  const offering = await api.expect(201, 'POST', '/v1/offerings', {
    name: `gold-${n}`,
    zone,
    providerId: provider.id,
    allowAdhoc: true,
    allowUserSchedules: true,
    ...(opts.minUserScheduleIntervalS ? { minUserScheduleIntervalS: opts.minUserScheduleIntervalS } : {}),
    // No SLA unless asked: an SLA fires on the real clock and its keep-last deletes backups.
    ...(opts.sla ? { sla: opts.sla } : {}),
  });
  const instance = await api.expect(201, 'POST', '/v1/instances', {
    name: `vm-${n}`,
    zone,
    locator: opts.locator ?? { vm: `vm-${n}` },
    ...(opts.agentId ? { agentId: opts.agentId } : {}),
  });
  await assignOffering(api, instance.id, offering.id);
  return { providerId: provider.id, offeringId: offering.id, instanceId: instance.id };
}

/**
 * Through the API: a dummy provider connection `provider` in `zone` that takes any tenant's
 * locators, and an offering `offering` of it for ad-hoc backups, granted to each of `grants`.
 */
export async function offerDummy(
  api: Api,
  zone: string,
  opts: {
    provider: string;
    offering: string;
    config?: Record<string, unknown>;
    allowUserSchedules?: boolean;
    grants?: string[];
  },
): Promise<{ providerId: string; offeringId: string }> {
  const provider = await api.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
    name: opts.provider,
    plugin: '@cairn/plugin-dummy',
    tenantLocators: 'any',
    ...(opts.config ? { config: opts.config } : {}),
  });
  const offering = await api.expect(201, 'POST', '/v1/offerings', {
    name: opts.offering,
    zone,
    providerId: provider.id,
    allowAdhoc: true,
    allowUserSchedules: opts.allowUserSchedules ?? false,
  });
  for (const tenantId of opts.grants ?? [])
    await api.expect(201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId });
  return { providerId: provider.id as string, offeringId: offering.id as string };
}

/**
 * Assigns an offering and returns the instance. Where the plugin is asked to run the SLA's
 * schedule itself (the dummy declares provider-schedules: `202` with a configure-schedule task),
 * waits for its answer, and insists that it left the clock to Cairn, as these tests count on.
 */
export async function assignOffering(api: Api, instanceId: string, offeringId: string): Promise<any> {
  const r = await api.call('PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
  if (r.status === 200) return r.body;
  if (r.status !== 202)
    throw new Error(`assigning ${offeringId} to ${instanceId}: ${r.status} ${JSON.stringify(r.body)}`);
  const task = await waitForTask(api, r.body.task.id, ['succeeded', 'failed', 'cancelled', 'lost']);
  const instance = await api.expect(200, 'GET', `/v1/instances/${instanceId}`);
  if (task.state !== 'succeeded' || instance.schedule?.owner !== 'cairn')
    throw new Error(`configure-schedule ${task.id} ended ${task.state}: ${JSON.stringify(task.error ?? instance)}`);
  return instance;
}

export interface TaskBody {
  id: string;
  state: string;
  attempt: number;
  backupId: string | null;
  error: { code: string; message: string } | null;
  progress: { percent: number; bytesDone: number; bytesTotal: number };
  /** The operation's output as JSON (null until it succeeded, and for a backup). */
  output: unknown;
}

/** A backup job's run as the API shows it (`BackupJobRun`). */
export interface RunBody {
  id: string;
  trigger: 'run' | 'schedule' | 'retry';
  state: string;
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number;
  memberCounts: { total: number; outdated: number; ongoing: number; updated: number; error: number };
  members: {
    instanceId: string;
    set: 'OUTDATED' | 'ONGOING' | 'UPDATED' | 'ERROR';
    taskId: string | null;
    error: { code: string; message: string } | null;
  }[];
}

/** The states a task ends in. */
export const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

/** Starts a task with `POST route` (which must answer 202) and polls it to its end. */
export async function runToEnd(api: Api, route: string, body?: unknown, timeoutMs = 30_000): Promise<TaskBody> {
  const started = await api.expect<TaskBody>(202, 'POST', route, body);
  return waitForTask(api, started.id, ENDED, timeoutMs);
}

/** An ad-hoc backup of `instanceId` (with `body`, when given), to its end. */
export function backup(api: Api, instanceId: string, body?: unknown, timeoutMs?: number): Promise<TaskBody> {
  return runToEnd(api, `/v1/instances/${instanceId}/backups`, body, timeoutMs);
}

/** Polls a task until it is in one of `states`. */
export async function waitForTask(api: Api, id: string, states: string[], timeoutMs = 30_000): Promise<TaskBody> {
  let last: TaskBody | undefined;
  try {
    return await waitFor(
      async () => {
        last = await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${id}`);
        return states.includes(last.state) ? last : undefined;
      },
      `task ${id} to reach ${states.join('|')}`,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** The restore points a dummy provider with `storeDir` holds, by external id (one JSON file each). */
export function dummyPoints(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .sort();
}

/**
 * A restore point of `instance` written behind Cairn's back into a dummy provider's `dir`, in the
 * dummy's own file format (a sync finds it there).
 */
export function writeDummyPoint(dir: string, id: string, instance: string, extra: Record<string, unknown> = {}): void {
  const point = { id, instance, mode: 'FULL', parent: null, size: 7, createdAt: '2026-01-01T00:00:00.000Z', ...extra };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(point, null, 2));
}
