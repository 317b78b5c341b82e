import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  PluginError,
  type BackupRequest,
  type BackupResult,
  type Provider,
  type ProviderConnection,
  type RestoreResult,
  type TaskContext,
} from '@cairn/plugin-sdk';

export interface DummyOptions {
  durationMs: number;
  sizeBytes: number;
  steps: number;
  failCode?: string;
  failMessage?: string;
  failAt: 'start' | 'end';
}

const DEFAULTS: DummyOptions = { durationMs: 1000, sizeBytes: 64 * 1024 * 1024, steps: 5, failAt: 'end' };

function pick(source: unknown): Partial<DummyOptions> {
  if (typeof source !== 'object' || source === null) return {};
  const s = source as Record<string, unknown>;
  const out: Partial<DummyOptions> = {};
  const int = (key: 'durationMs' | 'sizeBytes' | 'steps', min: number) => {
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
  if (typeof s['failCode'] === 'string') out.failCode = s['failCode'];
  if (typeof s['failMessage'] === 'string') out.failMessage = s['failMessage'];
  if (s['failAt'] === 'start' || s['failAt'] === 'end') out.failAt = s['failAt'];
  return out;
}

/** Connection config, overridden by the instance locator's `dummy` object. */
export function dummyOptions(config: unknown, locator: unknown): DummyOptions {
  const local =
    typeof locator === 'object' && locator !== null ? (locator as Record<string, unknown>)['dummy'] : undefined;
  return { ...DEFAULTS, ...pick(config), ...pick(local) };
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
      message: `${verb} step ${i}/${opts.steps}`,
    });
  }
  if (opts.failCode) throw fail();
}

export function createDummyProvider(connection: ProviderConnection): Provider {
  return {
    async backup(req: BackupRequest, ctx: TaskContext): Promise<BackupResult> {
      const opts = dummyOptions(connection.config, req.locator);
      await simulate(opts, ctx, 'backup');
      return {
        externalId: `dummy-${randomUUID()}`,
        sizeBytes: opts.sizeBytes,
        addedBytes: req.mode === 'INCREMENT' ? Math.round(opts.sizeBytes / 10) : opts.sizeBytes,
        mode: req.mode,
        ...(req.parentExternalId ? { parentExternalId: req.parentExternalId } : {}),
      };
    },
    async restore(req, ctx): Promise<RestoreResult> {
      const opts = dummyOptions(connection.config, req.locator);
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
      await simulate({ ...opts, durationMs: Math.min(opts.durationMs, 100), steps: 1 }, ctx, 'delete');
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
    preflight(): Promise<{ ok: boolean; message?: string }> {
      return Promise.resolve({ ok: true });
    },
  };
}
