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
