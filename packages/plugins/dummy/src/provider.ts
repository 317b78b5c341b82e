import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  PluginError,
  type BackupRequest,
  type BackupResult,
  type ConfigureScheduleResult,
  type Provider,
  type ProviderConnection,
  type RestoreResult,
  type TaskContext,
  type ListedBackup,
  type PowerStateResult,
  type PreflightCheck,
  type PruneResult,
} from '@cairn/plugin-sdk';
import { PointStore, ScheduleStore, powerStateOf } from './store.js';

/** A listed restore point, with the chain the dummy knows of. */
export type ListedPoint = ListedBackup & { mode: 'FULL' | 'INCREMENT'; parentExternalId: string | null };

/** The checks of the dummy's preflight, in the order it answers them. */
export const PREFLIGHT_CHECKS = ['config-valid', 'store-writable'] as const;
export type PreflightCheckName = (typeof PREFLIGHT_CHECKS)[number];

/** TEST ONLY (`syncGarbage`): a listing no control plane can take, to show it changes nothing. */
const GARBAGE = [{ externalId: 42, createdAt: 'yesterday', sizeBytes: -1 }, 'not a point'];

export interface DummyOptions {
  durationMs: number;
  sizeBytes: number;
  steps: number;
  failCode?: string;
  failMessage?: string;
  /** Said after each progress report's step (`backup step 1/5: <this>`). */
  progressMessage?: string;
  failAt: 'start' | 'end';
  /** Where the restore points live (one JSON file each); unset: nothing is kept. */
  storeDir?: string;
  /** Deletes fail with DELETE_REFUSED: tests make a provider that will not let go. */
  failDeletes?: boolean;
  /** TEST ONLY: sync answers a malformed listing. */
  syncGarbage?: boolean;
  /** TEST ONLY: sync takes its listing, then holds it this long before answering (a slow listing). */
  syncHoldMs?: number;
  /** The power state of an instance whose `<storeDir>/power/<instanceId>` file does not say. */
  powerState: 'running' | 'stopped';
  /** configure-schedule keeps the schedule in the store and takes the clock over (`managed: true`). */
  providerSchedules?: boolean;
  /** configure-schedule and deconfigure-schedule fail with SCHEDULE_REFUSED. */
  failSchedules?: boolean;
  /** Preflight answers this check failed, with advice. */
  failPreflight?: PreflightCheckName;
  /** TEST ONLY: preflight puts the connection's credentials in a message (the agent must blank them). */
  preflightLeak?: boolean;
}

const DEFAULTS: DummyOptions = {
  durationMs: 1000,
  sizeBytes: 64 * 1024 * 1024,
  steps: 5,
  failAt: 'end',
  powerState: 'stopped',
};

function pick(source: unknown): Partial<DummyOptions> {
  if (typeof source !== 'object' || source === null) return {};
  const s = source as Record<string, unknown>;
  const out: Partial<DummyOptions> = {};
  const int = (key: 'durationMs' | 'sizeBytes' | 'steps' | 'syncHoldMs', min: number) => {
    const v = s[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new PluginError('BAD_CONFIG', `dummy: ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    out[key] = v;
  };
  int('durationMs', 0);
  int('sizeBytes', 0);
  int('steps', 1);
  int('syncHoldMs', 0);
  if (typeof s['failCode'] === 'string') out.failCode = s['failCode'];
  if (typeof s['failMessage'] === 'string') out.failMessage = s['failMessage'];
  if (typeof s['progressMessage'] === 'string') out.progressMessage = s['progressMessage'];
  if (s['failAt'] === 'start' || s['failAt'] === 'end') out.failAt = s['failAt'];
  if (typeof s['syncGarbage'] === 'boolean') out.syncGarbage = s['syncGarbage'];
  if (s['powerState'] === 'running' || s['powerState'] === 'stopped') out.powerState = s['powerState'];
  const failPreflight = s['failPreflight'];
  if (failPreflight !== undefined) {
    if (!PREFLIGHT_CHECKS.includes(failPreflight as PreflightCheckName)) {
      throw new PluginError(
        'BAD_CONFIG',
        `dummy: failPreflight must be one of ${PREFLIGHT_CHECKS.join(', ')}, got ${JSON.stringify(failPreflight)}`,
      );
    }
    out.failPreflight = failPreflight as PreflightCheckName;
  }
  for (const key of ['failDeletes', 'providerSchedules', 'failSchedules', 'preflightLeak'] as const) {
    if (typeof s[key] === 'boolean') out[key] = s[key];
  }
  return out;
}

/** Connection config, overridden by the instance locator's `dummy` object. */
export function dummyOptions(config: unknown, locator: unknown): DummyOptions {
  const local =
    typeof locator === 'object' && locator !== null ? (locator as Record<string, unknown>)['dummy'] : undefined;
  const storeDir =
    typeof config === 'object' && config !== null ? (config as Record<string, unknown>)['storeDir'] : undefined;
  if (storeDir !== undefined && (typeof storeDir !== 'string' || storeDir === '')) {
    throw new PluginError('BAD_CONFIG', `dummy: storeDir must be a non-empty path, got ${JSON.stringify(storeDir)}`);
  }
  // The store belongs to the connection: an instance's locator cannot point it elsewhere.
  return { ...DEFAULTS, ...pick(config), ...pick(local), ...(storeDir ? { storeDir } : {}) };
}

/** Walks `steps` progress reports over `durationMs`, honouring the abort signal. */
async function simulate(opts: DummyOptions, ctx: TaskContext, verb: string): Promise<void> {
  const fail = () =>
    new PluginError(opts.failCode ?? 'DUMMY_FAILURE', opts.failMessage ?? `dummy ${verb} failed as configured`);
  if (opts.failCode && opts.failAt === 'start') throw fail();
  ctx.event({ type: 'provider.message', message: `dummy ${verb} started` });
  const stepMs = opts.durationMs / opts.steps;
  for (let i = 1; i <= opts.steps; i++) {
    try {
      await sleep(stepMs, undefined, { signal: ctx.signal });
    } catch (err) {
      // Tell the tenant (and tests) that the signal reached the plugin, then stop.
      ctx.event({ type: 'provider.message', message: `dummy ${verb} aborted at step ${i}/${opts.steps}` });
      throw err;
    }
    const bytesDone = Math.round((opts.sizeBytes * i) / opts.steps);
    ctx.progress({
      percent: Math.round((100 * i) / opts.steps),
      bytesDone,
      bytesTotal: opts.sizeBytes,
      message: `${verb} step ${i}/${opts.steps}${opts.progressMessage ? `: ${opts.progressMessage}` : ''}`,
    });
  }
  if (opts.failCode) throw fail();
}

/** Whether the agent may write to the store: a probe file made and removed. */
async function storeCheck(storeDir: string | undefined): Promise<PreflightCheck> {
  const name = 'store-writable';
  if (!storeDir) return { name, ok: true, message: 'no storeDir is set: restore points are not kept' };
  const probe = join(storeDir, `.preflight-${randomUUID()}`);
  try {
    await mkdir(storeDir, { recursive: true });
    await writeFile(probe, 'preflight');
    await unlink(probe);
    return { name, ok: true, message: `${storeDir} is writable` };
  } catch (err) {
    return {
      name,
      ok: false,
      message: `${storeDir} is not writable: ${err instanceof Error ? err.message : String(err)}`,
      advice: `create ${storeDir} and let the agent's user write to it, or set another storeDir`,
    };
  }
}

/**
 * The dummy's preflight: `config-valid` (the connection config, overridden by the locator's
 * `dummy` object, is one the dummy takes) and `store-writable`. It takes `durationMs` like every
 * operation, and fails with `failCode` when that is set.
 */
async function preflight(
  connection: ProviderConnection,
  locator: unknown,
  ctx: TaskContext,
): Promise<PreflightCheck[]> {
  let opts: DummyOptions;
  try {
    opts = dummyOptions(connection.config, locator);
  } catch (err) {
    if (!(err instanceof PluginError)) throw err;
    return [
      {
        name: 'config-valid',
        ok: false,
        message: err.message,
        advice: 'fix the provider connection config (or the locator dummy object) to match the plugin configSchema',
      },
    ];
  }
  await simulate(opts, ctx, 'preflight');
  const config: PreflightCheck = {
    name: 'config-valid',
    ok: true,
    message: opts.preflightLeak
      ? `the config is valid; credentials ${JSON.stringify(connection.credentials)}`
      : 'the config is valid',
  };
  const checks = [config, await storeCheck(opts.storeDir)];
  return checks.map((c) =>
    c.name === opts.failPreflight
      ? {
          name: c.name,
          ok: false,
          message: `dummy: ${c.name} fails as configured (failPreflight)`,
          advice: 'remove failPreflight from the provider connection config or the locator',
        }
      : c,
  );
}

function refuseSchedules(opts: DummyOptions, what: string): void {
  if (opts.failSchedules) {
    throw new PluginError('SCHEDULE_REFUSED', `dummy: the backup system refuses to ${what} (failSchedules is set)`);
  }
}

export function createDummyProvider(connection: ProviderConnection): Provider {
  return {
    async backup(req: BackupRequest, ctx: TaskContext): Promise<BackupResult> {
      const opts = dummyOptions(connection.config, req.locator);
      await simulate(opts, ctx, 'backup');
      const store = opts.storeDir ? new PointStore(opts.storeDir) : undefined;
      let parent = req.mode === 'INCREMENT' ? req.parentExternalId : undefined;
      // As a real backup system does, an increment whose base is gone becomes a full.
      if (store && parent && !(await store.get(parent))) {
        ctx.event({ type: 'provider.message', message: `dummy: base ${parent} is gone, taking a full backup` });
        parent = undefined;
      }
      const mode = req.mode === 'INCREMENT' && parent ? 'INCREMENT' : store ? 'FULL' : req.mode;
      const result: BackupResult = {
        externalId: `dummy-${randomUUID()}`,
        sizeBytes: opts.sizeBytes,
        addedBytes: mode === 'INCREMENT' ? Math.round(opts.sizeBytes / 10) : opts.sizeBytes,
        mode,
        ...(parent ? { parentExternalId: parent } : {}),
      };
      await store?.put({
        id: result.externalId,
        instance: req.instanceId,
        mode,
        parent: parent ?? null,
        size: result.sizeBytes,
        createdAt: new Date().toISOString(),
      });
      return result;
    },
    async restore(req, ctx): Promise<RestoreResult> {
      const opts = dummyOptions(connection.config, req.locator);
      // The control plane saw the instance stopped; it may have been started since.
      if (req.requireStopped && (await powerStateOf(opts, req.instanceId)) === 'running') {
        throw new PluginError('INSTANCE_RUNNING', `dummy: instance ${req.instanceId} is running; stop it to restore`);
      }
      await simulate(opts, ctx, 'restore');
      return { bytesRestored: opts.sizeBytes, extra: { backupExternalId: req.backupExternalId } };
    },
    async restoreVolume(req, ctx): Promise<RestoreResult> {
      const opts = dummyOptions(connection.config, req.locator);
      await simulate(opts, ctx, 'restore-volume');
      return { bytesRestored: opts.sizeBytes, extra: { volume: req.volume, targetInstanceId: req.targetInstanceId } };
    },
    async deleteBackup(req, ctx): Promise<void> {
      const opts = dummyOptions(connection.config, req.locator);
      if (opts.failDeletes) {
        throw new PluginError('DELETE_REFUSED', `dummy: deletes are refused by config (${req.backupExternalId})`);
      }
      const store = opts.storeDir ? new PointStore(opts.storeDir) : undefined;
      const point = await store?.get(req.backupExternalId);
      // A point kept for another instance is not this one's to delete (a shared store).
      if (point && req.instanceId !== undefined && point.instance !== req.instanceId)
        throw new PluginError(
          'BACKUP_NOT_FOUND',
          `dummy: ${req.backupExternalId} is not a backup of instance ${req.instanceId}; nothing deleted`,
        );
      await simulate({ ...opts, durationMs: Math.min(opts.durationMs, 100), steps: 1 }, ctx, 'delete');
      await store?.delete(req.backupExternalId);
    },
    /** Appends the time to `<storeDir>/prunes.log` (what tests count); nothing else to free. */
    async prune(ctx): Promise<PruneResult> {
      const opts = dummyOptions(connection.config, undefined);
      await simulate({ ...opts, durationMs: Math.min(opts.durationMs, 100), steps: 1 }, ctx, 'prune');
      if (opts.storeDir) {
        await mkdir(opts.storeDir, { recursive: true });
        await appendFile(join(opts.storeDir, 'prunes.log'), `${new Date().toISOString()}\n`);
      }
      return { message: 'dummy: pruned' };
    },
    /**
     * With providerSchedules, keeps the SLA as `<storeDir>/schedules/<instanceId>.json` and runs
     * the clock itself (managed); without, leaves the clock to Cairn.
     */
    async configureSchedule(req, ctx): Promise<ConfigureScheduleResult> {
      const opts = dummyOptions(connection.config, req.locator);
      refuseSchedules(opts, `configure the schedule of ${req.instanceId}`);
      if (!opts.providerSchedules) return { managed: false };
      if (!opts.storeDir)
        throw new PluginError('NO_STORE', 'dummy: providerSchedules needs a storeDir to keep schedules in');
      await new ScheduleStore(opts.storeDir).put({
        instanceId: req.instanceId,
        offeringExternalId: req.offeringExternalId ?? null,
        sla: { cron: req.sla.cron, timezone: req.sla.timezone, keepLast: req.sla.keepLast },
        configuredAt: new Date().toISOString(),
      });
      ctx.event({
        type: 'provider.message',
        message: `dummy: schedule ${req.sla.cron} (${req.sla.timezone}) set for ${req.instanceId}`,
      });
      return { managed: true };
    },
    async deconfigureSchedule(req): Promise<void> {
      const opts = dummyOptions(connection.config, req.locator);
      refuseSchedules(opts, `remove the schedule of ${req.instanceId}`);
      if (opts.storeDir) await new ScheduleStore(opts.storeDir).delete(req.instanceId);
    },
    /** Every restore point in the store, oldest first, with the instance it belongs to. */
    async sync(): Promise<ListedPoint[]> {
      const opts = dummyOptions(connection.config, undefined);
      if (opts.syncGarbage) return GARBAGE as unknown as ListedPoint[];
      if (!opts.storeDir) throw new PluginError('NO_STORE', 'dummy: set storeDir to keep and list restore points');
      const points = await new PointStore(opts.storeDir).list();
      if (opts.syncHoldMs) await sleep(opts.syncHoldMs);
      return points.map((p) => ({
        externalId: p.id,
        createdAt: p.createdAt,
        sizeBytes: p.size,
        locator: { instanceId: p.instance },
        mode: p.mode,
        parentExternalId: p.parent,
        ...(p.expiresAt ? { expiresAt: p.expiresAt } : {}),
      }));
    },
    listOfferings(): Promise<{ externalId: string; name: string; description?: string }[]> {
      const opts = dummyOptions(connection.config, undefined);
      if (opts.failCode) {
        return Promise.reject(
          new PluginError(opts.failCode, opts.failMessage ?? 'dummy list-offerings failed as configured'),
        );
      }
      return Promise.resolve([
        { externalId: 'dummy-gold', name: 'Gold', description: 'daily, keep 30' },
        { externalId: 'dummy-silver', name: 'Silver', description: 'weekly, keep 8' },
      ]);
    },
    async powerState(req): Promise<PowerStateResult> {
      return { state: await powerStateOf(dummyOptions(connection.config, req.locator), req.instanceId) };
    },
    async preflight(req, ctx) {
      const checks = await preflight(connection, req.locator, ctx);
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}
