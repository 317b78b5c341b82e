/**
 * The host the kit plays the agent's part on: the directories a run grants the plugin, what lies
 * outside them (canaries a confined plugin must never read nor change), and how the kit sees
 * whether anything there was read or changed.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A run's directories on the host. */
export interface HostDirs {
  /** The run's directory: everything below is removed at the end. */
  root: string;
  /** The one root the kit's agent grants (`HostAccess.roots`): the sample data and the restores. */
  tenant: string;
  /** The agent's own state (`HostAccess.denied`), inside the granted root. */
  state: string;
  /** Outside every root: what a confined plugin never reads nor writes. */
  outside: string;
}

/** The places of {@link writeHostFixtures}, each an absolute path. */
export function hostPlaces(dirs: HostDirs) {
  return {
    /** A directory outside the roots, with a canary file. */
    secret: path.join(dirs.outside, 'secret'),
    /** A link in the granted root to `secret`. */
    linkToSecret: path.join(dirs.tenant, 'link-out'),
    /** A directory outside the roots a restore target names (holds a canary). */
    foreignTarget: path.join(dirs.outside, 'target'),
    /** A link in the granted root to `foreignTarget`. */
    linkToTarget: path.join(dirs.tenant, 'link-target'),
    /** A file of the agent's state. */
    credential: path.join(dirs.state, 'credential.json'),
    /** Where a planted link to a directory of the sample leads: holds a file the sample has too. */
    plantedDir: path.join(dirs.outside, 'planted-dir'),
    /** Where a planted link to a file of the sample leads. */
    plantedFile: path.join(dirs.outside, 'planted-file.txt'),
  };
}

/** Writes what lies outside the roots and the links that lead there from inside. */
export async function writeHostFixtures(dirs: HostDirs): Promise<void> {
  const at = hostPlaces(dirs);
  await mkdir(dirs.state, { recursive: true });
  await writeFile(at.credential, '{"token":"the agent\'s own"}\n');
  await mkdir(at.secret, { recursive: true });
  await writeFile(path.join(at.secret, 'canary.txt'), 'outside the roots: never read, never written\n');
  await symlink(at.secret, at.linkToSecret);
  await mkdir(at.foreignTarget, { recursive: true });
  await writeFile(path.join(at.foreignTarget, 'keep.txt'), 'outside the roots: a restore never lands here\n');
  await symlink(at.foreignTarget, at.linkToTarget);
  // The sample has nested/deeper/leaf.txt and hello.txt: a restore through the links writes these.
  await mkdir(path.join(at.plantedDir, 'deeper'), { recursive: true });
  await writeFile(path.join(at.plantedDir, 'deeper', 'leaf.txt'), 'outside the roots: root-owned\n');
  await writeFile(at.plantedFile, 'ssh-ed25519 AAAA… root@host\n');
}

/**
 * Swaps a directory (`nested`) and a file (`hello.txt`) of a copy of the sample at `dir` for links
 * to what lies outside the roots, as a tenant could between a backup and a restore.
 */
export async function plantLinks(dir: string, dirs: HostDirs): Promise<void> {
  const at = hostPlaces(dirs);
  await mkdir(dir, { recursive: true });
  await rm(path.join(dir, 'nested'), { recursive: true, force: true });
  await symlink(at.plantedDir, path.join(dir, 'nested'));
  await rm(path.join(dir, 'hello.txt'), { force: true });
  await symlink(at.plantedFile, path.join(dir, 'hello.txt'));
}

/** Each entry below `dir` by relative path: kind, mode, size, mtime, and a file's bytes or a link's target. */
export type Fingerprint = Map<string, string>;

export async function fingerprint(dir: string): Promise<Fingerprint> {
  const out: Fingerprint = new Map();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, relPath);
      const st = await lstat(full, { bigint: true });
      const what = st.isSymbolicLink()
        ? `symlink to ${await readlink(full)}`
        : st.isFile()
          ? `file sha256 ${createHash('sha256')
              .update(await readFile(full))
              .digest('hex')
              .slice(0, 16)}`
          : st.isDirectory()
            ? 'dir'
            : 'special file';
      out.set(relPath, `${what}, mode ${(st.mode & 0o7777n).toString(8)}, ${st.size} bytes, mtime ${st.mtimeNs} ns`);
      if (st.isDirectory()) await walk(relPath);
    }
  };
  await walk('');
  return out;
}

/**
 * What differs between two fingerprints of one directory, one line each, naming the path.
 *
 * @example fingerprintChanges(new Map([['a', 'x']]), new Map([['a', 'y'], ['b', 'z']])) // → ['a: was x, now y', 'b: added (z)']
 */
export function fingerprintChanges(before: Fingerprint, after: Fingerprint): string[] {
  const out: string[] = [];
  for (const [p, was] of before) {
    const now = after.get(p);
    if (now === undefined) out.push(`${p}: removed`);
    else if (now !== was) out.push(`${p}: was ${was}, now ${now}`);
  }
  for (const [p, now] of after) if (!before.has(p)) out.push(`${p}: added (${now})`);
  return out;
}

/** An access time long past, set on files the kit watches: any read since moves it (relatime included). */
const LONG_AGO = new Date('2000-01-01T00:00:00Z');

/** Sets the access time of each of `paths` long past, keeping their modification times. */
export async function ageAccessTimes(paths: readonly string[]): Promise<void> {
  for (const p of paths) await utimes(p, LONG_AGO, (await lstat(p)).mtime);
}

/** Those of `paths` read since {@link ageAccessTimes}. */
export async function readSinceAged(paths: readonly string[]): Promise<string[]> {
  const read: string[] = [];
  for (const p of paths) if ((await lstat(p)).atimeMs !== LONG_AGO.getTime()) read.push(p);
  return read;
}

/**
 * Whether the file system of `dir` records reads in access times (not mounted `noatime`), found
 * by reading a probe file. Where it does not, the kit cannot see reads. A reader that opens with
 * O_NOATIME (restic does, for files it owns or as root) leaves no trace either.
 */
export async function keepsAccessTimes(dir: string): Promise<boolean> {
  const probe = path.join(dir, '.atime-probe');
  await writeFile(probe, 'probe');
  try {
    await ageAccessTimes([probe]);
    await readFile(probe);
    return (await readSinceAged([probe])).length === 1;
  } finally {
    await rm(probe, { force: true });
  }
}
