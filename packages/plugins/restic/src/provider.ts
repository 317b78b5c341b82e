import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkRepositoryIdentity,
  isPluginError,
  PluginError,
  REPOSITORY_NOT_FOUND,
  type BackupRequest,
  type BackupResult,
  type HostAccess,
  type ListedBackup,
  type PreflightCheck,
  type Provider,
  type ProviderConnection,
  type ProviderOffering,
  type PruneResult,
  type RestoreResult,
  type TaskContext,
} from '@cairn/plugin-sdk';
import { confinePath, makeStaging, PATH_NOT_ALLOWED, placeRestored, removeStaging } from '@cairn/plugin-sdk/paths';
import { checkVersion, classify, redact, ResticClient, type ResticTarget, type VersionCheck } from './client.js';
import { localDirectory } from './locks.js';

/** The tag that ties a snapshot to the Cairn instance it backs up; sync lists only tagged snapshots. */
export const INSTANCE_TAG = 'cairn-instance=';
/**
 * The tag that names one backup call (a random nonce): a cancelled backup finds by it the snapshot
 * restic saved before it could say so.
 */
export const RUN_TAG = 'cairn-run=';

/**
 * At most one progress report a second reaches the agent: each one travels to the control plane
 * and is stored, on the cores restic runs on (restic itself prints dozens of status lines a second).
 */
const PROGRESS_EVERY_MS = 1_000;
/** How often a restore measures what it has written so far. */
const RESTORE_POLL_MS = 1_000;

const DEFAULTS = { binary: 'restic', cancelGraceMs: 2_000, lockWaitMs: 120_000, minFreeBytes: 1024 ** 3 };

export interface ResticSettings extends ResticTarget {
  minFreeBytes: number;
}

/** A repository that is a directory on the agent's host (not a `scheme:` URL). */
export const isLocal = (repository: string): boolean => path.isAbsolute(repository);

const REMOTE = /^[a-z][a-z0-9]*:\S+/;

/** The connection as restic needs it; a connection that cannot work is a BAD_CONFIG error. */
export function settingsOf(connection: ProviderConnection): ResticSettings {
  const bad = (message: string) => new PluginError('BAD_CONFIG', `restic: ${message}`);
  const repository = connection.endpoint;
  if (typeof repository !== 'string' || !(isLocal(repository) || REMOTE.test(repository)))
    throw bad(
      "endpoint must be the repository: an absolute path on the agent's host or a restic URL such as rest:https://host/repo or sftp:user@host:/srv/repo",
    );
  const password = connection.credentials['password'];
  if (typeof password !== 'string' || password === '')
    throw bad('credentials.password (the repository password) is required');
  const config = connection.config ?? {};
  const int = (key: 'cancelGraceMs' | 'lockWaitMs' | 'minFreeBytes', max = Number.MAX_SAFE_INTEGER): number => {
    const v = config[key];
    if (v === undefined) return DEFAULTS[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
      throw bad(`config.${key} must be an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  const binary = config['binary'] ?? DEFAULTS.binary;
  if (typeof binary !== 'string' || binary === '') throw bad('config.binary must be a non-empty path');
  return {
    binary,
    repository,
    password,
    cancelGraceMs: int('cancelGraceMs', 4_000),
    lockWaitMs: int('lockWaitMs'),
    minFreeBytes: int('minFreeBytes'),
  };
}

/** An instance's locator, `{paths: [...]}`: a non-empty list of absolute paths on the agent's host. */
export function pathsOf(locator: unknown, what = 'locator'): string[] {
  const paths = (locator as { paths?: unknown } | null | undefined)?.paths;
  const ok =
    Array.isArray(paths) &&
    paths.length > 0 &&
    paths.every((p) => typeof p === 'string' && path.isAbsolute(p) && !p.includes('\0'));
  if (!ok) {
    throw new PluginError(
      'BAD_LOCATOR',
      `restic: ${what} must be {"paths": [...]}, a non-empty list of absolute paths on the agent's host; got ${JSON.stringify(locator ?? null).slice(0, 200)}`,
    );
  }
  return [...new Set((paths as string[]).map((p) => path.normalize(p)))];
}

/** Where a restore writes to: `{path}` (absolute) when given, else undefined. */
function targetPathOf(target: unknown): string | undefined {
  if (target === undefined || target === null) return undefined;
  const p = typeof target === 'string' ? target : (target as { path?: unknown }).path;
  if (typeof p !== 'string' || !path.isAbsolute(p) || p.includes('\0'))
    throw new PluginError(
      'BAD_TARGET',
      `restic: the restore target must be {"path": "<absolute path>"}, got ${JSON.stringify(target).slice(0, 200)}`,
    );
  return path.normalize(p);
}

/**
 * Each of `paths` checked against what this task may touch on the host (the agent checks the
 * request too, but restic is handed only paths the plugin has judged itself): PATH_NOT_ALLOWED
 * for one outside the roots, behind a link that leads out of them, or at the agent's own state.
 */
async function confined(paths: readonly string[], host: HostAccess, what: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) out.push(await confinePath(p, host, `restic: ${what}`));
  return out;
}

async function assertPathsExist(paths: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const p of paths) if (!(await fs.stat(p).catch(() => undefined))) missing.push(p);
  if (missing.length > 0)
    throw new PluginError('PATH_NOT_FOUND', `restic: nothing to back up at ${missing.join(', ')} on the agent's host`);
}

/** The snapshot id Cairn keeps: restic's short id (the first 8 hex digits), which restic accepts everywhere. */
const shortId = (id: string): string => id.slice(0, 8);

interface Throttled {
  /** Reports unless one went out less than PROGRESS_EVERY_MS ago (`force`: reports anyway). */
  (report: Parameters<TaskContext['progress']>[0], force?: boolean): void;
  /** Whether a report now would go out (so a status line need not even be parsed). */
  due(): boolean;
}

function throttled(ctx: TaskContext): Throttled {
  let last = 0;
  const due = () => Date.now() - last >= PROGRESS_EVERY_MS;
  return Object.assign(
    (report: Parameters<TaskContext['progress']>[0], force = false) => {
      if (!force && !due()) return;
      last = Date.now();
      ctx.progress(report);
    },
    { due },
  );
}

interface BackupStatus {
  message_type: 'status';
  percent_done?: number;
  total_files?: number;
  files_done?: number;
  total_bytes?: number;
  bytes_done?: number;
  seconds_remaining?: number;
}

interface BackupSummary {
  message_type: 'summary';
  snapshot_id: string;
  total_bytes_processed: number;
  data_added: number;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  total_duration: number;
}

function statusReport(s: BackupStatus) {
  const files = s.total_files === undefined ? '' : `${s.files_done ?? 0}/${s.total_files} files`;
  const eta = s.seconds_remaining === undefined ? '' : `, ETA ${s.seconds_remaining} s`;
  return {
    percent: Math.round((s.percent_done ?? 0) * 1000) / 10,
    bytesDone: s.bytes_done ?? 0,
    bytesTotal: s.total_bytes ?? 0,
    message: `backup: ${files}${eta}`,
  };
}

interface Snapshot {
  id: string;
  short_id?: string;
  time: string;
  parent?: string;
  paths: string[];
  tags?: string[];
}

const instanceOf = (s: Snapshot): string | undefined =>
  s.tags?.find((t) => t.startsWith(INSTANCE_TAG))?.slice(INSTANCE_TAG.length);

/** Bytes of the regular files below `dir` (what a restore has written so far). */
async function bytesBelow(dir: string, stop: () => boolean): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    if (stop()) return;
    const st = await fs.lstat(p).catch(() => undefined);
    if (!st) return;
    if (st.isFile()) total += st.size;
    else if (st.isDirectory()) {
      const names = await fs.readdir(p).catch(() => [] as string[]);
      for (const n of names) await walk(path.join(p, n));
    }
  };
  await walk(dir);
  return total;
}

/**
 * Merges a staging directory that stands for `to` itself into `to`. `placeRestored` gives `to`
 * the mode and times of what it places, and staging's are its own private 0700: it takes those of
 * `to` first, so a restore into a served directory leaves it as readable as it was.
 */
async function placeStaging(staging: string, to: string, host: HostAccess): Promise<void> {
  const st = await fs.stat(to).catch(() => undefined);
  if (st?.isDirectory()) {
    await fs.chmod(staging, st.mode & 0o7777);
    await fs.utimes(staging, st.atime, st.mtime);
  }
  await placeRestored(staging, to, host, 'restic: restore target');
}

/** The nearest directory at or above `p` that exists (where a repository would be created). */
async function existingAncestor(p: string): Promise<string> {
  for (let dir = p; ; dir = path.dirname(dir)) {
    if (await fs.stat(dir).catch(() => undefined)) return dir;
    if (path.dirname(dir) === dir) return dir;
  }
}

/**
 * The repository's id, its identity (`restic cat config`), or why it cannot be read. Read without
 * a lock: nothing changes the config after init, and a prune's lock need not be waited for.
 */
/**
 * Repository ids this process read, by local repository directory and password: with the digest
 * of the repository's `config` file as it was read. restic writes that file once, encrypted, when
 * it makes the repository; the same bytes decrypt to the same id. So while the file's bytes are
 * unchanged, a task asks for the id without starting restic: each `restic cat config` opens the
 * repository (its key derivation alone is a good part of a second), and on a full backup that
 * was the whole of what Cairn added to restic alone. A remote backend is always asked.
 */
const knownIds = new Map<string, { digest: string; id: string }>();
/** Directories remembered at most (one agent serves a few connections). */
const KNOWN_IDS = 64;

/** The sha-256 of the repository's `config` file, undefined when it cannot be read. */
async function configDigest(dir: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await fs.readFile(path.join(dir, 'config')))
      .digest('hex');
  } catch {
    return undefined;
  }
}

/** {@link repositoryId}, answered from what this process read before while the config file is unchanged. */
async function knownRepositoryId(
  restic: ResticClient,
  s: ResticSettings,
  ctx: TaskContext,
): Promise<string | PluginError> {
  const dir = localDirectory(s.repository);
  if (!dir) return repositoryId(restic, s, ctx);
  const key = `${dir}\0${createHash('sha256').update(s.password).digest('hex')}`;
  const before = await configDigest(dir);
  const known = knownIds.get(key);
  if (before !== undefined && known?.digest === before) return known.id;
  const found = await repositoryId(restic, s, ctx);
  // Kept only when the file did not change while restic read it.
  if (typeof found === 'string' && before !== undefined && (await configDigest(dir)) === before) {
    knownIds.delete(key);
    if (knownIds.size >= KNOWN_IDS) knownIds.delete(knownIds.keys().next().value!);
    knownIds.set(key, { digest: before, id: found });
  }
  return found;
}

async function repositoryId(restic: ResticClient, s: ResticSettings, ctx: TaskContext): Promise<string | PluginError> {
  const res = await restic.run(['cat', 'config', '--no-lock'], { signal: ctx.signal });
  if (res.code !== 0) return classify(res, s, 'open the repository');
  let id: unknown;
  try {
    id = (JSON.parse(res.stdout) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  return typeof id === 'string' && id !== ''
    ? id
    : new PluginError('RESTIC_FAILED', `restic: cat config printed no repository id: ${res.stdout.slice(0, 200)}`);
}

const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;

export const OFFERINGS: ProviderOffering[] = [
  { externalId: 'restic-hourly-24', name: 'Hourly, keep 24', description: 'a snapshot every hour, the last 24 kept' },
  { externalId: 'restic-daily-7', name: 'Daily, keep 7', description: 'a snapshot every day, the last 7 kept' },
  { externalId: 'restic-weekly-4', name: 'Weekly, keep 4', description: 'a snapshot every week, the last 4 kept' },
  {
    externalId: 'restic-monthly-12',
    name: 'Monthly, keep 12',
    description: 'a snapshot every month, the last 12 kept',
  },
];

/**
 * A provider over one restic repository. The restic version is checked when the provider is
 * made: an operation through a restic that is missing or older than 0.14 fails with
 * RESTIC_MISSING or RESTIC_TOO_OLD naming what was found, and preflight reports it as a check.
 */
export function createResticProvider(connection: ProviderConnection): Provider {
  let settings: ResticSettings | undefined;
  let setupError: PluginError | undefined;
  let version: VersionCheck | undefined;
  try {
    settings = settingsOf(connection);
    version = checkVersion(settings.binary);
  } catch (err) {
    if (!isPluginError(err)) throw err;
    setupError = err as PluginError;
  }
  const ready = (ctx: TaskContext): { s: ResticSettings; restic: ResticClient } => {
    if (setupError) throw setupError;
    if (!version!.ok) throw version!.error;
    return { s: settings!, restic: new ResticClient(settings!, ctx.logger) };
  };
  const say = (ctx: TaskContext, message: string) =>
    ctx.event({ type: 'provider.message', message: redact(message, settings?.password ?? '') });

  /**
   * Forgets what a cancelled backup saved: a cancelled backup leaves nothing behind. restic may have
   * saved its snapshot and been interrupted before it printed the summary that names it, so a
   * backup whose summary never came looks its snapshot up by the call's own tag. No wait for the
   * repository's lock beyond clearing stale locks once (a cancel stops promptly); a snapshot left
   * is logged, and the next sync lists it.
   */
  const forgetCancelled = async (
    restic: ResticClient,
    run: string,
    summary: BackupSummary | undefined,
    ctx: TaskContext,
  ): Promise<void> => {
    const now = { lockWaitMs: 0 };
    let ids: string[] = [];
    try {
      if (summary) ids = [summary.snapshot_id];
      else {
        const listed = await restic.ok(['snapshots', '--json', '--no-lock', '--tag', `${RUN_TAG}${run}`], 'list', now);
        ids = (JSON.parse(listed.stdout) as Snapshot[]).map((snap) => snap.id);
      }
      if (ids.length === 0) return;
      await restic.ok(['forget', ...ids], 'forget', now);
      for (const id of ids)
        say(ctx, `restic: the backup was cancelled after saving snapshot ${shortId(id)}; forgot it`);
    } catch (err) {
      ctx.logger.warn(
        { snapshots: ids.map(shortId), err: (err as Error).message },
        'restic: the backup was cancelled after saving its snapshot, which could not be forgotten',
      );
    }
  };

  /**
   * Opens the repository, as every operation does before anything else: its id is the
   * repository's identity, checked against the one the connection recorded (REPOSITORY_CHANGED on
   * another, before anything changes; reported when the connection records none). A repository
   * that is not there fails REPOSITORY_NOT_FOUND: no operation but a preflight asked to
   * initialise creates one, since a missing repository is as often an unmounted disk, and one
   * made there would fork the catalogue.
   */
  async function opened(ctx: TaskContext): Promise<ResticClient> {
    const { s, restic } = ready(ctx);
    const found = await knownRepositoryId(restic, s, ctx);
    if (typeof found !== 'string') {
      if (found.code !== REPOSITORY_NOT_FOUND) throw found;
      throw new PluginError(
        REPOSITORY_NOT_FOUND,
        `${found.message}: nothing was created. If the repository lives on a disk that is not mounted, mount it; a new repository is made only by a preflight with initialise`,
      );
    }
    checkRepositoryIdentity(connection, ctx, found, redact(`repository ${s.repository}`, s.password));
    return restic;
  }

  /**
   * `restic restore` of one snapshot (only `include`, when given), never straight onto the host:
   * restic writes into a fresh staging directory inside the roots, and `placeRestored` moves what
   * it wrote into place without following a link anyone planted there since the backup. In place
   * (`to` undefined) each path the snapshot holds goes back to that path; into a directory `to`,
   * each lands at its absolute path below it, as `restic restore --target` lays it out. Every path
   * restored is confined first (a snapshot adopted by sync may name paths this tenant may not
   * touch), and the staging directory is removed however the restore ends. Progress is measured
   * from the bytes written into staging against the snapshot's listed size.
   */
  async function restoreInto(
    req: { backupExternalId: string; instanceId: string },
    ctx: TaskContext,
    to: string | undefined,
    include?: string,
  ): Promise<RestoreResult> {
    const restic = await opened(ctx);
    const id = req.backupExternalId;
    let snapshot: Snapshot | undefined;
    let total = 0;
    let nodes = 0;
    await restic.ok(['ls', '--json', id, ...(include ? [include] : [])], `list snapshot ${id}`, {
      signal: ctx.signal,
      onLine(line) {
        if (line.trim() === '') return;
        const item = JSON.parse(line) as { struct_type?: string; type?: string; size?: number } & Snapshot;
        if (item.struct_type === 'snapshot') snapshot = item;
        else if (item.struct_type === 'node') {
          nodes++;
          if (item.type === 'file') total += item.size ?? 0;
        }
      },
    });
    if (!snapshot || instanceOf(snapshot) !== req.instanceId)
      throw new PluginError('BACKUP_NOT_FOUND', `restic: snapshot ${id} is not a backup of instance ${req.instanceId}`);
    if (include && nodes === 0)
      throw new PluginError(
        'VOLUME_NOT_FOUND',
        `restic: snapshot ${id} holds nothing at ${include} (it holds ${snapshot.paths.join(', ')})`,
      );
    const held = await confined(include ? [include] : snapshot.paths, ctx.host, `snapshot ${id} path`);
    const where = to ?? 'its original paths';
    const staging = await makeStaging(to ?? held[0]!, ctx.host);
    const report = throttled(ctx);
    let done = false;
    const ended = new AbortController();
    const poll = (async () => {
      while (!done) {
        await sleep(RESTORE_POLL_MS, undefined, { signal: ended.signal }).catch(() => undefined);
        if (done) return;
        const written = await bytesBelow(staging, () => done);
        report({
          percent: total === 0 ? 0 : Math.min(99, Math.floor((100 * written) / total)),
          bytesDone: Math.min(written, total),
          bytesTotal: total,
          message: `restore to ${where}`,
        });
      }
    })();
    say(ctx, `restic: restoring snapshot ${id}${include ? ` (${include})` : ''} to ${where}`);
    try {
      try {
        await restic.ok(
          ['restore', id, '--target', staging, ...(include ? ['--include', include] : [])],
          `restore ${id}`,
          { signal: ctx.signal },
        );
      } finally {
        done = true;
        ended.abort();
        await poll;
      }
      ctx.signal.throwIfAborted();
      if (to === undefined) {
        for (const p of held) {
          const from = path.join(staging, p);
          if (await fs.lstat(from).catch(() => undefined))
            await placeRestored(from, p, ctx.host, 'restic: snapshot path');
        }
      } else await placeStaging(staging, to, ctx.host);
    } finally {
      await removeStaging(staging);
    }
    report({ percent: 100, bytesDone: total, bytesTotal: total, message: `restored to ${where}` }, true);
    return {
      bytesRestored: total,
      extra: { target: to ?? '/', snapshotId: snapshot.id, ...(include ? { include } : {}) },
    };
  }

  return {
    async backup(req: BackupRequest, ctx: TaskContext): Promise<BackupResult> {
      const { s } = ready(ctx);
      const paths = await confined(pathsOf(req.locator), ctx.host, 'locator path');
      await assertPathsExist(paths);
      const restic = await opened(ctx);
      const report = throttled(ctx);
      const run = randomBytes(8).toString('hex');
      const attempt = async (parent: string | undefined) => {
        let summary: BackupSummary | undefined;
        const res = await restic
          .ok(
            [
              'backup',
              '--json',
              '--tag',
              `${INSTANCE_TAG}${req.instanceId}`,
              '--tag',
              `${RUN_TAG}${run}`,
              // A full backup reads every file; an increment compares with its parent's metadata.
              ...(parent ? ['--parent', parent] : ['--force']),
              '--',
              ...paths,
            ],
            'backup',
            {
              signal: ctx.signal,
              okCodes: [3],
              // restic prints dozens of status lines a second by default; two a second keep one
              // report a second going out (a line a little early for the throttle waits for the next).
              defaults: { RESTIC_PROGRESS_FPS: String(2000 / PROGRESS_EVERY_MS) },
              onLine(line) {
                if (!line.startsWith('{') || (line.startsWith('{"message_type":"status"') && !report.due())) return;
                const msg = JSON.parse(line) as BackupStatus | BackupSummary | { message_type?: string };
                if (msg.message_type === 'status') report(statusReport(msg as BackupStatus));
                else if (msg.message_type === 'summary') summary = msg as BackupSummary;
              },
            },
          )
          .catch(async (err: unknown) => {
            // Cancelled while restic was saving its snapshot: it may be in the repository, and no
            // record will ever name it.
            if (ctx.signal.aborted) await forgetCancelled(restic, run, summary, ctx);
            throw err;
          });
        if (res.code === 3)
          ctx.event({
            type: 'warning',
            message: redact(
              `restic: some files could not be read and are not in the backup: ${res.stderr.slice(-500)}`,
              s.password,
            ),
          });
        if (!summary) throw new PluginError('RESTIC_FAILED', 'restic: the backup ended without a summary');
        return summary;
      };
      let parent = req.mode === 'INCREMENT' ? req.parentExternalId : undefined;
      let summary: BackupSummary;
      for (let tries = 0; ; tries++) {
        try {
          summary = await attempt(parent);
          break;
        } catch (err) {
          if (!isPluginError(err) || tries > 0) throw err;
          if (err.code === 'BACKUP_NOT_FOUND' && parent) {
            say(ctx, `restic: parent snapshot ${parent} is gone; taking a full backup`);
            parent = undefined;
          } else throw err;
        }
      }
      report(
        { percent: 100, bytesDone: summary.total_bytes_processed, bytesTotal: summary.total_bytes_processed },
        true,
      );
      return {
        externalId: shortId(summary.snapshot_id),
        sizeBytes: summary.total_bytes_processed,
        addedBytes: summary.data_added,
        mode: parent ? 'INCREMENT' : 'FULL',
        ...(parent ? { parentExternalId: parent } : {}),
        extra: {
          filesNew: summary.files_new,
          filesChanged: summary.files_changed,
          filesUnmodified: summary.files_unmodified,
          durationS: summary.total_duration,
        },
      };
    },

    async restore(req, ctx): Promise<RestoreResult> {
      ready(ctx);
      await confined(pathsOf(req.locator), ctx.host, 'locator path');
      const target = targetPathOf(req.target);
      return restoreInto(
        req,
        ctx,
        target === undefined ? undefined : await confinePath(target, ctx.host, 'restic: restore target'),
      );
    },

    async restoreVolume(req, ctx): Promise<RestoreResult> {
      ready(ctx);
      await confined(pathsOf(req.locator), ctx.host, 'locator path');
      if (typeof req.volume !== 'string' || !path.isAbsolute(req.volume))
        throw new PluginError(
          'BAD_VOLUME',
          `restic: the volume must be an absolute path in the backup, got ${JSON.stringify(req.volume)}`,
        );
      const target = await confinePath(
        targetPathOf(req.target) ?? pathsOf(req.targetLocator, 'targetLocator')[0]!,
        ctx.host,
        'restic: restore target',
      );
      const result = await restoreInto(req, ctx, target, path.normalize(req.volume));
      return { ...result, extra: { ...result.extra, targetInstanceId: req.targetInstanceId } };
    },

    async deleteBackup(req, ctx): Promise<void> {
      const restic = await opened(ctx);
      const id = req.backupExternalId;
      // Looked up first: several connections, of several tenants, may share one repository, and a
      // snapshot tagged for another instance is not this instance's to forget. An id already
      // gone lists nothing (restic 0.14 says "Ignoring"): the delete is done.
      const [snapshot] =
        (await restic.json<Snapshot[] | null>(['snapshots', id], `find snapshot ${id}`, ctx.signal)) ?? [];
      if (snapshot && req.instanceId !== undefined && instanceOf(snapshot) !== req.instanceId)
        throw new PluginError(
          'BACKUP_NOT_FOUND',
          `restic: snapshot ${id} is not a backup of instance ${req.instanceId}; nothing forgotten`,
        );
      // The full id: exactly the snapshot checked, never another one sharing the prefix. Only
      // forgotten: the data it held is freed by the next prune, which runs on the connection's
      // prune schedule, so a delete holds the repository's exclusive lock only for a moment.
      if (snapshot) await restic.ok(['forget', snapshot.id], `forget ${id}`, { signal: ctx.signal });
      say(
        ctx,
        snapshot
          ? `restic: forgot snapshot ${id}; its data is freed by the next prune`
          : `restic: snapshot ${id} was already gone`,
      );
    },

    async prune(ctx): Promise<PruneResult> {
      // A prune of the wrong repository (an unmounted disk's empty mount point) frees nothing it should.
      const restic = await opened(ctx);
      const res = await restic.ok(['prune'], 'prune', { signal: ctx.signal });
      // restic 0.14 ends with what it removed, e.g. "total prune: 12 blobs / 3.456 MiB".
      const summary = /total prune:.*$/m.exec(res.stdout)?.[0].trim();
      const message = `restic: pruned the repository${summary ? ` (${summary})` : ''}`;
      say(ctx, message);
      return { message };
    },

    async sync(_req, ctx): Promise<ListedBackup[]> {
      const restic = await opened(ctx);
      const snapshots = await restic.json<Snapshot[] | null>(['snapshots'], 'list snapshots', ctx.signal);
      const ours = (snapshots ?? []).filter((s) => instanceOf(s) !== undefined);
      const known = new Set(ours.map((s) => s.id));
      return ours.map((s) => ({
        externalId: shortId(s.id),
        createdAt: new Date(s.time).toISOString(),
        // restic 0.14 keeps no size in a snapshot; Cairn keeps what the backup reported.
        sizeBytes: 0,
        locator: { instanceId: instanceOf(s) },
        mode: s.parent && known.has(s.parent) ? 'INCREMENT' : 'FULL',
        parentExternalId: s.parent && known.has(s.parent) ? shortId(s.parent) : null,
      }));
    },

    listOfferings(): Promise<ProviderOffering[]> {
      return Promise.resolve(OFFERINGS);
    },

    async preflight(req, ctx): Promise<{ ok: boolean; message: string; checks: PreflightCheck[] }> {
      const checks: PreflightCheck[] = [];
      const add = (check: PreflightCheck) =>
        checks.push({ ...check, message: redact(check.message, settings?.password ?? '') });
      const finish = () => {
        const failed = checks.filter((c) => !c.ok);
        return {
          ok: failed.length === 0,
          message:
            failed.length === 0
              ? `restic ${version?.ok ? version.version : ''} and repository ${settings?.repository} are ready`
              : `failed: ${failed.map((c) => c.name).join(', ')}`,
          checks,
        };
      };
      if (setupError) {
        add({ name: 'connection', ok: false, message: setupError.message, advice: 'fix the provider connection' });
        return finish();
      }
      const s = settings!;
      if (!version!.ok) {
        add({
          name: 'restic',
          ok: false,
          message: version!.error.message,
          advice:
            'install restic 0.14 or newer on the agent host (Debian: apt-get install restic), or set config.binary',
        });
        return finish();
      }
      add({ name: 'restic', ok: true, message: `restic ${version!.version} at ${s.binary}` });
      const restic = new ResticClient(s, ctx.logger);
      let found = await repositoryId(restic, s, ctx);
      let created = false;
      if (typeof found !== 'string' && found.code === REPOSITORY_NOT_FOUND && req.initialise === true) {
        if (connection.identity) {
          add({
            name: 'repository',
            ok: false,
            message: `no repository at ${s.repository}, and this connection recorded repository ${connection.identity}: no new one was initialised where that one may only be unmounted`,
            advice: `mount the repository again; if it is gone for good, clear the connection's repositoryIdentity and run the preflight with initialise again`,
          });
          return finish();
        }
        const res = await restic.run(['init'], { signal: ctx.signal });
        // Two preflights at once: the one that lost the race finds the repository made.
        const raced = res.code !== 0 && /already (exists|initialized)/i.test(res.stderr);
        if (res.code !== 0 && !raced) {
          add({
            name: 'repository',
            ok: false,
            message: classify(res, s, 'init').message,
            advice: `let the agent's user create ${s.repository}, or run restic init for it`,
          });
          return finish();
        }
        created = !raced;
        found = await repositoryId(restic, s, ctx);
      }
      if (typeof found === 'string') {
        add({
          name: 'repository',
          ok: true,
          message: created
            ? `there was no repository at ${s.repository}: initialised it (repository ${found})`
            : `repository ${found} at ${s.repository} is initialised`,
        });
        add({ name: 'password', ok: true, message: 'the password opens the repository' });
        try {
          checkRepositoryIdentity(connection, ctx, found, `repository ${s.repository}`);
          add({
            name: 'identity',
            ok: true,
            message: connection.identity
              ? `it is repository ${found}, the one this connection recorded`
              : `repository ${found}: recorded for this connection, which now fails on any other repository`,
          });
        } catch (e) {
          if (!isPluginError(e)) throw e;
          add({
            name: 'identity',
            ok: false,
            message: `${e.code}: ${e.message}`,
            advice:
              "mount the repository this connection backed up to; if it was moved on purpose, clear the connection's repositoryIdentity",
          });
        }
      } else if (found.code === 'WRONG_PASSWORD') {
        add({ name: 'repository', ok: true, message: `repository ${s.repository} is initialised` });
        add({
          name: 'password',
          ok: false,
          message: found.message,
          advice: 'set credentials.password to the password the repository was initialised with',
        });
      } else if (found.code === REPOSITORY_NOT_FOUND) {
        const where = isLocal(s.repository) ? await existingAncestor(s.repository) : undefined;
        const writable =
          where === undefined ||
          (await fs.access(where, fsConstants.W_OK).then(
            () => true,
            () => false,
          ));
        add({
          name: 'repository',
          ok: false,
          message: `no repository at ${s.repository}: backups fail until there is one (none is ever made by a backup)`,
          advice: connection.identity
            ? `this connection recorded repository ${connection.identity}: mount the disk it is on; if it is gone for good, clear the connection's repositoryIdentity and run this preflight with initialise`
            : writable
              ? `if ${s.repository} is where it should be (not an unmounted disk), run this preflight with initialise to create it`
              : `let the agent's user write to ${where} and run this preflight with initialise, or run restic init for ${s.repository}`,
        });
        add({ name: 'password', ok: true, message: 'not checked: there is no repository' });
      } else {
        add({
          name: 'repository',
          ok: false,
          message: found.message,
          advice: 'check that the endpoint names a repository the agent host can reach',
        });
      }
      if (isLocal(s.repository)) {
        const where = await existingAncestor(s.repository);
        const stats = await fs.statfs(where);
        const free = Number(stats.bavail) * Number(stats.bsize);
        const ok = free >= s.minFreeBytes;
        add({
          name: 'free space',
          ok,
          message: `${gib(free)} free at ${where}${ok ? '' : `, below the ${gib(s.minFreeBytes)} required`}`,
          ...(ok ? {} : { advice: 'free space on the repository disk or set config.minFreeBytes' }),
        });
      }
      if (req.locator !== undefined && req.locator !== null) {
        try {
          await assertPathsExist(await confined(pathsOf(req.locator), ctx.host, 'locator path'));
          add({ name: 'paths', ok: true, message: 'every path of the locator exists' });
        } catch (e) {
          const refused = isPluginError(e) && e.code === PATH_NOT_ALLOWED;
          add({
            name: 'paths',
            ok: false,
            message: (e as Error).message,
            advice: refused
              ? "name paths below the directories the agent allows this tenant (the agent's --roots)"
              : 'fix the instance locator',
          });
        }
      }
      return finish();
    },
  };
}
