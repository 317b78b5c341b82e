import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PluginError } from '../errors.js';
import type { Operation } from '../manifest.js';
import type { HostAccess } from '../provider.js';

export type { HostAccess } from '../provider.js';

/**
 * @cairn/plugin-sdk/paths: for plugins that read and write host paths (they declare the
 * `host-paths` trait): judge a path against `ctx.host`, and restore without following links.
 * Node only (it uses node:fs); the SDK's main entry stays free of it.
 */

/** The failure code of every path refused by confinement. */
export const PATH_NOT_ALLOWED = 'PATH_NOT_ALLOWED';

const refuse = (message: string) => new PluginError(PATH_NOT_ALLOWED, message);

/** `p` is `dir` or lies below it (both absolute and normalized). */
export function isWithin(p: string, dir: string): boolean {
  if (p === dir) return true;
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return p.startsWith(prefix);
}

/**
 * `p` with every symbolic link resolved, component by component, as far as it exists; a dangling
 * link counts as where it points, and what does not exist yet is appended as written.
 */
export async function resolveExisting(p: string): Promise<string> {
  const pending = path
    .normalize(p)
    .split(path.sep)
    .filter((c) => c !== '');
  let at = path.parse(p).root;
  for (let hops = 0; pending.length > 0;) {
    const name = pending.shift()!;
    if (name === '..') {
      at = path.dirname(at);
      continue;
    }
    const next = path.join(at, name);
    let st;
    try {
      st = await fs.lstat(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      return path.join(next, ...pending);
    }
    if (!st.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++hops > 40) throw refuse(`${p} has too many levels of symbolic links`);
    const target = await fs.readlink(next);
    const rest = target.split(path.sep).filter((c) => c !== '');
    pending.unshift(...rest);
    if (path.isAbsolute(target)) at = path.parse(target).root;
  }
  return at;
}

/** The roots that exist, resolved (a root behind a symlink is judged where it really is). */
async function realRoots(host: HostAccess): Promise<string[]> {
  const out: string[] = [];
  for (const r of host.roots) {
    if (typeof r !== 'string' || !path.isAbsolute(r)) continue;
    const real = await fs.realpath(r).catch(() => undefined);
    if (real !== undefined) out.push(real);
  }
  return out;
}

/**
 * Checks that `p` is a path this task may touch and returns it normalized. `p` is judged after
 * resolution: `..`, and symbolic links in any existing part of it, are followed first, and the
 * real path must lie below one of the roots and away from every denied path (not at, inside or
 * above one: backing up `/` would take the agent's credential along). Anything else is a
 * PluginError `PATH_NOT_ALLOWED` naming `what`.
 *
 * @example await confinePath('/srv/tenants/acme/www', ctx.host, 'locator.paths[0]') // → '/srv/tenants/acme/www'
 */
export async function confinePath(p: unknown, host: HostAccess, what: string): Promise<string> {
  if (typeof p !== 'string' || !path.isAbsolute(p) || p.includes('\0'))
    throw refuse(`${what} must be an absolute path, got ${JSON.stringify(p ?? null).slice(0, 200)}`);
  const normal = path.normalize(p).replace(/(.)\/+$/, '$1');
  const real = await resolveExisting(normal);
  const shown = real === normal ? normal : `${normal} (which resolves to ${real})`;
  await refuseDenied(real, shown, host, what);
  const roots = await realRoots(host);
  if (!roots.some((r) => isWithin(real, r)))
    throw refuse(
      roots.length === 0
        ? `${what} ${shown} is refused: this agent allows no host paths for this tenant (the agent's --roots)`
        : `${what} ${shown} is outside the directories this agent allows for this tenant`,
    );
  return normal;
}

/** PATH_NOT_ALLOWED when `real` (resolved) is at, inside or above a denied path. */
async function refuseDenied(real: string, shown: string, host: HostAccess, what: string): Promise<void> {
  for (const d of host.denied) {
    const deny = await resolveExisting(path.normalize(d));
    if (isWithin(real, deny) || isWithin(deny, real))
      throw refuse(`${what} ${shown} is or holds the agent's own state, which is never backed up or restored into`);
  }
}

/**
 * The agent's check of a repository that is a host path (an absolute endpoint, as restic's local
 * repositories are): resolved like {@link confinePath}, it must not be, hold nor lie inside a
 * denied path (the agent's state). The roots are not asked: a repository lives outside them. A
 * URL (anything not absolute) is not a host path and passes. PluginError `PATH_NOT_ALLOWED`
 * naming `what` otherwise.
 *
 * @example await confineRepository('/var/lib/cairn-agent/repo', ctx.host, 'endpoint') // → throws PATH_NOT_ALLOWED
 */
export async function confineRepository(endpoint: unknown, host: HostAccess, what: string): Promise<void> {
  if (typeof endpoint !== 'string' || !path.isAbsolute(endpoint)) return;
  if (endpoint.includes('\0')) throw refuse(`${what} must be a path without NUL`);
  const normal = path.normalize(endpoint).replace(/(.)\/+$/, '$1');
  const real = await resolveExisting(normal);
  await refuseDenied(real, real === normal ? normal : `${normal} (which resolves to ${real})`, host, what);
}

/** The root that holds `p` (already confined), resolved. */
async function rootOf(p: string, host: HostAccess): Promise<string> {
  const real = await resolveExisting(p);
  const root = (await realRoots(host)).find((r) => isWithin(real, r));
  if (root === undefined) throw refuse(`${p} is outside the directories this agent allows for this tenant`);
  return root;
}

/**
 * A fresh, empty directory (mode 0700) inside the root that holds `near`, for a restore to write
 * into before {@link placeRestored} moves its files into place. Being new and private, it holds
 * no link anyone planted. Remove it with {@link removeStaging} when done, however the restore ends.
 */
export async function makeStaging(near: string, host: HostAccess): Promise<string> {
  const root = await rootOf(near, host);
  return fs.mkdtemp(path.join(root, '.cairn-restore-'));
}

async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Lets this process move entries out of a directory of the staging tree and move the directory
 * itself (a rename rewrites its `..`): both need write permission on it, which a read-only
 * directory of a restore point lacks unless the process is root. Its own mode is set back once it
 * is in place. Only ever called on a real directory below a staging directory, which is private.
 */
const openUp = (dir: string, st: { mode: number }) => fs.chmod(dir, (st.mode & 0o7777) | 0o700);

/** Moves `from` to `to` (which does not exist), copying across file systems without following links. */
async function move(from: string, to: string): Promise<void> {
  const st = await fs.lstat(from);
  if (st.isDirectory()) await openUp(from, st);
  try {
    await fs.rename(from, to);
    if (st.isDirectory()) await fs.chmod(to, st.mode & 0o7777);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  if (st.isDirectory()) {
    await fs.mkdir(to, { mode: 0o700 });
    for (const name of await fs.readdir(from)) await move(path.join(from, name), path.join(to, name));
    await fs.chmod(to, st.mode & 0o7777);
    await fs.utimes(to, st.atime, st.mtime);
  } else if (st.isSymbolicLink()) {
    await fs.symlink(await fs.readlink(from), to);
  } else {
    // COPYFILE_EXCL opens with O_EXCL: it fails on anything at `to`, a planted link included.
    await fs.copyFile(from, to, fsConstants.COPYFILE_EXCL);
    await fs.chmod(to, st.mode & 0o7777);
    await fs.utimes(to, st.atime, st.mtime);
  }
  await fs.rm(from, { recursive: true, force: true });
}

/** Merges the tree at `from` into `to`, never following a link at or below `to`. */
async function merge(from: string, to: string): Promise<void> {
  const src = await fs.lstat(from);
  const dst = await lstatOrUndefined(to);
  if (dst === undefined) return move(from, to);
  if (src.isDirectory() && dst.isDirectory()) {
    await openUp(from, src);
    for (const name of await fs.readdir(from)) await merge(path.join(from, name), path.join(to, name));
    await fs.chmod(to, src.mode & 0o7777);
    await fs.utimes(to, src.atime, src.mtime);
    return;
  }
  // A file, a link (planted or not) or a different kind of node: what the restore point holds
  // replaces it; rename() replaces a link itself, never what it points at.
  if (src.isDirectory() || dst.isDirectory()) await fs.rm(to, { recursive: true, force: true });
  if (!src.isDirectory() && !dst.isDirectory()) {
    try {
      await fs.rename(from, to);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await fs.rm(to, { force: true });
    }
  }
  await move(from, to);
}

/**
 * Puts what a restore wrote into a staging directory ({@link makeStaging}) in place at `to`,
 * merging with what is there: directories are entered only when they are real directories, and
 * anything else at a restored path (a file, or a symbolic link a tenant planted after the backup)
 * is replaced, not followed. `to` is confined first; its existing parents are taken as they
 * resolve, so a link planted above `to` that leads outside the roots refuses the restore.
 *
 * A process that swaps a directory for a link in the instant between its check and the move can
 * still race this; run the agent as a user that cannot write where tenants write, or give each
 * tenant's root to a user of its own, to close that too.
 */
export async function placeRestored(
  from: string,
  to: string,
  host: HostAccess,
  what = 'restore target',
): Promise<void> {
  await confinePath(to, host, what);
  const real = await resolveExisting(path.normalize(to));
  const root = await rootOf(real, host);
  // Parents below the root that do not exist yet are created as real directories.
  const missing: string[] = [];
  for (let at = path.dirname(real); isWithin(at, root) && !(await lstatOrUndefined(at)); at = path.dirname(at))
    missing.unshift(at);
  for (const dir of missing) await fs.mkdir(dir, { mode: 0o755 });
  await merge(from, real);
}

/** Makes every directory at and below `dir` writable (never following a link), so that it can be removed. */
async function openUpTree(dir: string): Promise<void> {
  const st = await lstatOrUndefined(dir);
  if (!st?.isDirectory()) return;
  await openUp(dir, st);
  for (const name of await fs.readdir(dir)) await openUpTree(path.join(dir, name));
}

/**
 * Removes a staging directory ({@link makeStaging}) and whatever a restore left in it, however far
 * the restore got: what it wrote may hold read-only directories, which `fs.rm` cannot empty unless
 * the process is root.
 *
 * @example const staging = await makeStaging(to, ctx.host); try { ... } finally { await removeStaging(staging); }
 */
export async function removeStaging(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
  }
  await openUpTree(dir);
  await fs.rm(dir, { recursive: true, force: true });
}

/** What a plugin's own tests may touch by default: the system's temporary directory. */
export const TEST_HOST: HostAccess = { roots: [os.tmpdir()], denied: [] };

/** The operations whose host paths are judged before the plugin runs. */
const TOUCHING: ReadonlySet<Operation> = new Set(['backup', 'restore', 'restore-volume', 'preflight']);

const field = (o: unknown, key: string): unknown =>
  typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>)[key] : undefined;

async function confineLocator(locator: unknown, host: HostAccess, what: string): Promise<void> {
  const paths = field(locator, 'paths');
  if (!Array.isArray(paths) || paths.length === 0)
    throw new PluginError(
      'BAD_LOCATOR',
      `${what} must be {"paths": [...]}, a non-empty list of absolute paths on the agent's host; got ${JSON.stringify(locator ?? null).slice(0, 200)}`,
    );
  for (const [i, p] of paths.entries()) await confinePath(p, host, `${what}.paths[${i}]`);
}

/**
 * The agent's own check of a task for a plugin that declares `host-paths`, before any plugin code
 * runs: every path of the locator, of a restore-volume's target locator and of a restore target
 * must resolve below the agent's roots for the task's tenant and away from its own state, whatever
 * the control plane sent. Rejects with PluginError `PATH_NOT_ALLOWED` (or `BAD_LOCATOR`).
 *
 * @example await confineRequest('restore', { locator: { paths: ['/srv/t/a'] }, target: { path: '/etc' } }, host) // → throws PATH_NOT_ALLOWED
 */
export async function confineRequest(
  operation: Operation,
  params: Record<string, unknown>,
  host: HostAccess,
): Promise<void> {
  if (!TOUCHING.has(operation)) return;
  const locator = params['locator'];
  // A preflight of the connection alone names no instance.
  if (!(operation === 'preflight' && (locator === undefined || locator === null)))
    await confineLocator(locator, host, 'locator');
  if (operation === 'restore-volume' && params['targetLocator'] !== undefined && params['targetLocator'] !== null)
    await confineLocator(params['targetLocator'], host, 'targetLocator');
  const target = params['target'];
  if ((operation === 'restore' || operation === 'restore-volume') && target !== undefined && target !== null) {
    const p = typeof target === 'string' ? target : field(target, 'path');
    await confinePath(p, host, 'target.path');
  }
}
