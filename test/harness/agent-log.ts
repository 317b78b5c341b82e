import fs from 'node:fs';
import path from 'node:path';

/**
 * The seqs of the reports an agent still holds unacknowledged, read from its log on disk
 * (`<stateDir>/wal/<generation>.log`: batches of a 12-byte header, magic, length and crc32, and
 * a JSON array of entries), the way a test looks at an agent from outside. A batch being written
 * at this moment ends the reading (its entries are not on disk yet).
 */
export function unacknowledgedSeqs(stateDir: string): number[] {
  const dir = path.join(stateDir, 'wal');
  const segments = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^\d{16}\.log$/.test(n)) : [];
  const newest = segments.sort().at(-1);
  if (!newest) return [];
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path.join(dir, newest));
  } catch {
    return unacknowledgedSeqs(stateDir); // replaced by a compaction meanwhile
  }
  const live = new Set<number>();
  for (let at = 0; at + 12 <= buf.length;) {
    const end = at + 12 + buf.readUInt32BE(at + 4);
    if (end > buf.length) break;
    const entries = JSON.parse(buf.subarray(at + 12, end).toString('utf8')) as {
      t: string;
      rec?: { seq: number };
      seqs?: number[];
    }[];
    for (const e of entries) {
      if (e.t === 'rec') live.add(e.rec!.seq);
      if (e.t === 'ack') for (const seq of e.seqs!) live.delete(seq);
    }
    at = end;
  }
  return [...live].sort((a, b) => a - b);
}
