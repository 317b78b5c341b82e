import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_DIR } from '../testing/agents.js';
import { tempDir } from '../testing/wait.js';

const CHILD = path.join(PACKAGE_DIR, 'src', 'testing', 'wal-crash-child.mjs');
const CHAINS = 4;
const KILLS_PER_CHAIN = 50;

type Line =
  { open: number[]; damaged: string[] } | { appended: number[] } | { durable: number[] } | { acked: number[] };

/** A small seeded generator: a failure names its seed and replays. */
function generator(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Starts the child on `stateDir`, waits for it to have opened the log, lets it run `delayMs`
 * (plus however far it gets in a few more lines), kills it with SIGKILL; returns its lines.
 */
function cycle(stateDir: string, seed: number, delayMs: number, minLines: number): Promise<Line[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, stateDir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Line[] = [];
    let buf = '';
    let stderr = '';
    let armed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)) as Line);
        buf = buf.slice(i + 1);
      }
      if (!armed && lines.length >= minLines) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // 'close', not 'exit': every line the child wrote before the kill has been read by then.
    child.on('close', (code, signal) => {
      if (buf.trim()) {
        try {
          lines.push(JSON.parse(buf) as Line);
        } catch {
          // cut by the kill
        }
      }
      if (signal !== 'SIGKILL') reject(new Error(`child ended with ${code ?? signal}: ${stderr}`));
      else resolve(lines);
    });
  });
}

/** What the parent knows of one log across kills. */
class Model {
  /** Reported durable and not (yet) acknowledged: must be there after any kill. */
  readonly mustHave = new Set<number>();
  /** Acknowledged: may come back (an ack alone is not written), never required. */
  readonly acked = new Set<number>();
  /** Highest seq ever handed out (a seq handed out but never written may come again: it was never sent). */
  handedOut = 0;
  /** Highest seq ever durable (reported so, or found after a kill): the ones that may have been sent. */
  highest = 0;

  check(lines: Line[], where: string): void {
    const [first, ...rest] = lines;
    expect(first && 'open' in first, `${where}: the child opened the log`).toBe(true);
    const { open, damaged } = first as { open: number[]; damaged: string[] };
    where = `${where} (damage found on open: ${damaged.join('; ') || 'none'})`;
    // In order, nothing twice.
    for (let i = 1; i < open.length; i++)
      expect(open[i]!, `${where}: seqs in order, no duplicates`).toBeGreaterThan(open[i - 1]!);
    const present = new Set(open);
    for (const seq of this.mustHave) expect(present.has(seq), `${where}: durable seq ${seq} survived`).toBe(true);
    for (const seq of open) {
      expect(seq, `${where}: seq ${seq} was handed out before`).toBeLessThanOrEqual(this.handedOut);
      this.highest = Math.max(this.highest, seq);
      // Present, so not acknowledged as far as this run knows (a lost ack brings it back).
      if (this.acked.has(seq)) this.acked.delete(seq);
      this.mustHave.add(seq);
    }
    for (const line of rest) {
      if ('appended' in line) {
        for (const seq of line.appended) {
          expect(seq, `${where}: seq ${seq} never repeats`).toBeGreaterThan(this.highest);
          this.handedOut = Math.max(this.handedOut, seq);
        }
      } else if ('durable' in line) {
        for (const seq of line.durable) this.mustHave.add(seq);
        this.highest = Math.max(this.highest, ...line.durable);
      } else if ('acked' in line) {
        for (const seq of line.acked) {
          this.mustHave.delete(seq);
          this.acked.add(seq);
        }
      }
    }
  }
}

describe('agent log under kill -9', () => {
  it(`loses nothing reported durable, duplicates nothing and never repeats a seq over ${CHAINS * KILLS_PER_CHAIN} kills`, async () => {
    if (!existsSync(path.join(PACKAGE_DIR, 'dist', 'state', 'wal.js'))) {
      throw new Error('packages/agent/dist is missing: build first ("npx pnpm@10 build")');
    }
    const { dir, cleanup } = tempDir('cairn-wal-crash-');
    try {
      const chains = Array.from({ length: CHAINS }, async (_, c) => {
        const stateDir = path.join(dir, `chain-${c}`);
        const random = generator(1000 + c);
        const model = new Model();
        let batches = 0;
        for (let k = 0; k < KILLS_PER_CHAIN; k++) {
          const seed = Math.floor(random() * 2 ** 31);
          // Kill right after the open, or after some batches (a few ms of appending).
          const delayMs = random() < 0.2 ? 0 : Math.floor(random() * 8);
          const lines = await cycle(stateDir, seed, delayMs, 1 + Math.floor(random() * 6));
          model.check(lines, `chain ${c}, kill ${k}, seed ${seed}`);
          batches += lines.filter((l) => 'durable' in l).length;
        }
        return batches;
      });
      const batches = await Promise.all(chains);
      // The kills landed while batches were being written, not only between runs.
      expect(batches.every((b) => b > KILLS_PER_CHAIN)).toBe(true);
    } finally {
      cleanup();
    }
  }, 240_000);
});
