import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Every regular file below `dir` by relative path, as `<size>:<sha256>`: two trees with equal
 * digests hold the same files byte for byte.
 */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const bytes = fs.readFileSync(p);
        out.set(path.relative(dir, p), `${bytes.length}:${createHash('sha256').update(bytes).digest('hex')}`);
      }
    }
  };
  walk(dir);
  return out;
}

/** The bytes of the regular files below `dir`. */
export const treeBytes = (dir: string): number =>
  [...treeDigest(dir).values()].reduce((n, v) => n + Number(v.split(':')[0]), 0);

/**
 * Every node at or below `p` by absolute path: a file as `<mode>:<sha256>`, a link as
 * `link:<target>` (never followed). Equal states mean nothing there was written, re-moded or
 * swapped for a link.
 */
export function treeState(p: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    const st = fs.lstatSync(at);
    if (st.isDirectory()) for (const n of fs.readdirSync(at)) walk(path.join(at, n));
    else if (st.isSymbolicLink()) out[at] = `link:${fs.readlinkSync(at)}`;
    else
      out[at] = `${(st.mode & 0o7777).toString(8)}:${createHash('sha256').update(fs.readFileSync(at)).digest('hex')}`;
  };
  walk(p);
  return out;
}
