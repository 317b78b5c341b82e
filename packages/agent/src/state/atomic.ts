import {
  close,
  closeSync,
  fsync,
  open,
  fchmodSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

let tmpCounter = 0;

/** True for the temporary names {@link writeFileAtomicSync} uses; left behind only by a crash. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the new
 * content, never a torn file: write a temporary file in the same directory, fsync it, rename it
 * over the target, then fsync the directory so the rename itself survives a power cut.
 *
 * Synchronous on purpose: callers rely on the write being durable before their next statement
 * (a spool record is on disk before anything can send it).
 *
 * @example writeFileAtomicSync('/var/lib/cairn/agent.json', JSON.stringify(cred), 0o600);
 */
export function writeFileAtomicSync(file: string, data: string, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    // The umask may have narrowed or widened `mode` at creation; make it exact.
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/** Makes directory entries (creations, renames, deletions) durable. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // some platforms cannot open a directory; the rename is still atomic there
  }
  try {
    fsyncSync(fd);
  } catch {
    // fsync on a directory is refused on a few file systems; nothing better to do there.
  } finally {
    closeSync(fd);
  }
}

/** {@link fsyncDir} off the event loop; never rejects, as that one never throws. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve) =>
    open(dir, 'r', (openErr, fd) => {
      if (openErr) return resolve();
      fsync(fd, () => close(fd, () => resolve()));
    }),
  );
}

/** Reads and parses a JSON file; `undefined` when it does not exist. */
export function readJsonSync(file: string): unknown {
  // Most reads find no file (an agent nobody drained reads its drain file on every assignment):
  // asking first is one system call, where a failed read builds and throws an error. Any other
  // failure to look (permissions) still throws, as the read would.
  if (statSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}
