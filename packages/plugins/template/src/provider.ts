import { randomUUID } from 'node:crypto';
import {
  chmod,
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import {
  PluginError,
  type BackupRequest,
  type BackupResult,
  type DeleteBackupRequest,
  type ListedBackup,
  type Provider,
  type ProviderConnection,
  type RestoreRequest,
  type RestoreResult,
  type TaskContext,
} from '@cairn/plugin-sdk';
import { confinePath, makeStaging, placeRestored, removeStaging } from '@cairn/plugin-sdk/paths';

/** One entry of a protected directory, as a restore point's index records it. */
interface Entry {
  /** Relative to the protected directory, `/`-separated. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Permission bits, e.g. 0o644. */
  mode: number;
  size: number;
  mtimeMs: number;
  /** Where a symlink points, as it was written (never followed). */
  target?: string;
}

/**
 * `<storeDir>/<externalId>/index.json`: what one restore point holds. Its files are under
 * `<storeDir>/<externalId>/files/`; a file an increment did not change is a hard link to the
 * parent's copy, so every point stands alone and any of them can be deleted.
 */
interface PointIndex {
  externalId: string;
  instanceId: string;
  createdAt: string;
  mode: 'FULL' | 'INCREMENT';
  parentExternalId: string | null;
  sizeBytes: number;
  entries: Entry[];
}

// External ids come back from the control plane: never let one name a path outside the store.
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/**
 * The directory an instance's locator names: `{"paths": ["/srv/www"]}`, one absolute path, as the
 * `host-paths` trait has locators. Throw a PluginError with a code of your own for bad input.
 */
function directoryOf(locator: unknown): string {
  const paths = (locator as { paths?: unknown } | null | undefined)?.paths;
  if (!Array.isArray(paths) || paths.length !== 1 || typeof paths[0] !== 'string' || !path.isAbsolute(paths[0])) {
    throw new PluginError(
      'BAD_LOCATOR',
      `the instance locator must be {"paths": ["/an/absolute/directory"]}, one directory, got ${JSON.stringify(locator)}`,
    );
  }
  return paths[0];
}

/** The directory a restore-to-path target names: `{"path": "/an/absolute/directory"}`. */
function targetOf(target: unknown): string {
  const dir = (target as { path?: unknown } | null | undefined)?.path;
  if (typeof dir !== 'string' || !path.isAbsolute(dir))
    throw new PluginError(
      'BAD_TARGET',
      `the restore target must be {"path": "/an/absolute/directory"}, got ${JSON.stringify(target)}`,
    );
  return dir;
}

/** Lists a directory tree depth first, each directory before what it holds; symlinks are not followed. */
async function walk(root: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(root, relPath);
      const st = await lstat(full);
      const base = { path: relPath, mode: st.mode & 0o7777, size: st.size, mtimeMs: st.mtimeMs };
      if (st.isSymbolicLink()) entries.push({ ...base, kind: 'symlink', target: await readlink(full) });
      else if (st.isFile()) entries.push({ ...base, kind: 'file' });
      else if (st.isDirectory()) {
        entries.push({ ...base, kind: 'dir', size: 0 });
        await visit(relPath);
      }
      // Sockets, FIFOs and devices are skipped.
    }
  };
  await visit('');
  return entries;
}

/** What `read()` gives, or `missing` when what it reads does not exist (ENOENT). */
async function unlessMissing<T>(read: () => Promise<T>, missing: T): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return missing;
    throw err;
  }
}

/** The restore points in `storeDir`, one sub-directory each. */
class Store {
  readonly dir: string;

  constructor(connection: ProviderConnection) {
    const dir = connection.config['storeDir'];
    if (typeof dir !== 'string' || !path.isAbsolute(dir)) {
      throw new PluginError('BAD_CONFIG', `storeDir must be an absolute path, got ${JSON.stringify(dir)}`);
    }
    this.dir = dir;
  }

  pointDir(externalId: string): string {
    if (!SAFE_ID.test(externalId))
      throw new PluginError('BACKUP_NOT_FOUND', `no restore point ${JSON.stringify(externalId)}`);
    return path.join(this.dir, externalId);
  }

  read(externalId: string): Promise<PointIndex | undefined> {
    const file = path.join(this.pointDir(externalId), 'index.json');
    return unlessMissing(async () => JSON.parse(await readFile(file, 'utf8')) as PointIndex, undefined);
  }

  async get(externalId: string): Promise<PointIndex> {
    const point = await this.read(externalId);
    if (!point) throw new PluginError('BACKUP_NOT_FOUND', `no restore point ${externalId} in ${this.dir}`);
    return point;
  }

  /** Oldest first. Half-written points (`.partial-*`) are not points. */
  async list(): Promise<PointIndex[]> {
    const names = await unlessMissing(() => readdir(this.dir), []);
    const points: PointIndex[] = [];
    for (const name of names.filter((n) => SAFE_ID.test(n))) {
      const point = await this.read(name);
      if (point) points.push(point);
    }
    return points.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.externalId.localeCompare(b.externalId));
  }
}

/** Percent of `done` out of `total` steps, below 100 until the operation is over. */
const percentOf = (done: number, total: number): number => Math.floor((100 * done) / (total + 1));

async function backup(connection: ProviderConnection, req: BackupRequest, ctx: TaskContext): Promise<BackupResult> {
  const store = new Store(connection);
  // Judge the path yourself, links resolved, before reading anything: the agent checks it too,
  // but a plugin that touches the host never relies on that alone.
  const source = await confinePath(directoryOf(req.locator), ctx.host, 'locator.paths[0]');
  // An increment builds on its parent; when the parent is gone, take a full backup (and say so).
  const parent = req.mode === 'INCREMENT' && req.parentExternalId ? await store.read(req.parentExternalId) : undefined;
  if (req.mode === 'INCREMENT' && !parent) {
    ctx.event({
      type: 'provider.message',
      message: `base ${req.parentExternalId ?? '(none)'} is gone: taking a full backup`,
    });
  }
  const before = new Map(parent?.entries.map((e) => [e.path, e]));
  const entries = await walk(source);
  const externalId = randomUUID();
  // Written under a temporary name and renamed at the end: a cancelled backup leaves no point.
  const partial = path.join(store.dir, `.partial-${externalId}`);
  await mkdir(path.join(partial, 'files'), { recursive: true });
  let sizeBytes = 0;
  let addedBytes = 0;
  try {
    for (const [i, entry] of entries.entries()) {
      // Check the signal between steps: a cancel must stop the operation promptly.
      ctx.signal.throwIfAborted();
      const to = path.join(partial, 'files', entry.path);
      if (entry.kind === 'dir') await mkdir(to);
      else if (entry.kind === 'symlink') await symlink(entry.target!, to);
      else {
        sizeBytes += entry.size;
        const old = before.get(entry.path);
        const same =
          old?.kind === 'file' && old.size === entry.size && old.mtimeMs === entry.mtimeMs && old.mode === entry.mode;
        if (parent && same) await link(path.join(store.pointDir(parent.externalId), 'files', entry.path), to);
        else {
          await copyFile(path.join(source, entry.path), to);
          addedBytes += entry.size;
        }
      }
      ctx.progress({ percent: percentOf(i + 1, entries.length), bytesDone: sizeBytes, message: entry.path });
    }
    const index: PointIndex = {
      externalId,
      instanceId: req.instanceId,
      createdAt: new Date().toISOString(),
      mode: parent ? 'INCREMENT' : 'FULL',
      parentExternalId: parent?.externalId ?? null,
      sizeBytes,
      entries,
    };
    await writeFile(path.join(partial, 'index.json'), JSON.stringify(index));
    ctx.signal.throwIfAborted();
    await rename(partial, store.pointDir(externalId));
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  ctx.progress({ percent: 100, bytesDone: sizeBytes, bytesTotal: sizeBytes, message: 'backed up' });
  ctx.logger.info({ externalId, entries: entries.length, addedBytes }, 'backup done');
  return {
    externalId,
    sizeBytes,
    addedBytes,
    mode: parent ? 'INCREMENT' : 'FULL',
    ...(parent ? { parentExternalId: parent.externalId } : {}),
  };
}

async function restore(connection: ProviderConnection, req: RestoreRequest, ctx: TaskContext): Promise<RestoreResult> {
  const store = new Store(connection);
  const point = await store.get(req.backupExternalId);
  // restore-to-path: `target: {path}` names a directory; without a target, restore in place.
  const to = await confinePath(
    req.target === undefined ? directoryOf(req.locator) : targetOf(req.target),
    ctx.host,
    req.target === undefined ? 'locator.paths[0]' : 'target.path',
  );
  const from = path.join(store.pointDir(point.externalId), 'files');
  // Never write at `to` directly: a tenant may have swapped a directory there for a link since the
  // backup. Write into a fresh private directory, then let placeRestored move it into place.
  const staging = await makeStaging(to, ctx.host);
  let bytesRestored = 0;
  try {
    for (const [i, entry] of point.entries.entries()) {
      ctx.signal.throwIfAborted();
      const dest = path.join(staging, entry.path);
      if (entry.kind === 'dir') await mkdir(dest);
      else if (entry.kind === 'symlink') await symlink(entry.target!, dest);
      else {
        await copyFile(path.join(from, entry.path), dest);
        await chmod(dest, entry.mode);
        bytesRestored += entry.size;
      }
      ctx.progress({ percent: percentOf(i + 1, point.entries.length), bytesDone: bytesRestored, message: entry.path });
    }
    // Directory modes last, deepest first: a read-only directory would refuse what goes in it.
    for (const entry of point.entries.filter((e) => e.kind === 'dir').reverse())
      await chmod(path.join(staging, entry.path), entry.mode);
    ctx.signal.throwIfAborted();
    // Staging stands for `to` itself, whose mode and times the point does not hold: keep its own.
    const own = await stat(to).catch(() => undefined);
    if (own?.isDirectory()) {
      await chmod(staging, own.mode & 0o7777);
      await utimes(staging, own.atime, own.mtime);
    }
    await placeRestored(staging, to, ctx.host);
  } finally {
    await removeStaging(staging);
  }
  ctx.progress({ percent: 100, bytesDone: bytesRestored, bytesTotal: bytesRestored, message: 'restored' });
  return { bytesRestored };
}

async function deleteBackup(connection: ProviderConnection, req: DeleteBackupRequest): Promise<void> {
  const store = new Store(connection);
  const point = await store.get(req.backupExternalId);
  // Renamed first, so a delete cut short never leaves half a point that still lists.
  const doomed = path.join(store.dir, `.deleting-${point.externalId}`);
  await rename(store.pointDir(point.externalId), doomed);
  await rm(doomed, { recursive: true, force: true });
}

/** Every restore point the store holds, for the control plane's sync. */
async function sync(connection: ProviderConnection): Promise<ListedBackup[]> {
  return (await new Store(connection).list()).map((p) => ({
    externalId: p.externalId,
    createdAt: p.createdAt,
    sizeBytes: p.sizeBytes,
    locator: { instanceId: p.instanceId },
    mode: p.mode,
    parentExternalId: p.parentExternalId,
  }));
}

/**
 * Called by the agent for every operation, with the provider connection as the SP admin set it.
 * Keep no state between calls: each operation may run on a fresh worker thread.
 */
export function createProvider(connection: ProviderConnection): Provider {
  return {
    backup: (req, ctx) => backup(connection, req, ctx),
    restore: (req, ctx) => restore(connection, req, ctx),
    deleteBackup: (req) => deleteBackup(connection, req),
    sync: () => sync(connection),
  };
}
