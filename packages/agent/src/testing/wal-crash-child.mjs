// The child of wal-crash.test.ts: opens the agent's log, says what it found, then appends
// batches of reports (and acknowledges some) until it is killed with -9. Every line is written
// synchronously, so the parent knows what was handed out and what was durable.
// Runs the built agent (dist/): started hundreds of times, it must start fast.
import { writeSync } from 'node:fs';
import { Spool } from '../../dist/spool/spool.js';
import { AgentLog } from '../../dist/state/wal.js';

const [stateDir, seedArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
const random = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
// writeSync on fd 1, never process.stdout: a full pipe makes process.stdout buffer in memory,
// and a kill -9 would lose lines the parent must see.
const say = (line) => writeSync(1, `${JSON.stringify(line)}\n`);

const damaged = [];
const log = AgentLog.open(stateDir, {
  clock: { now: () => Date.now() },
  onDamaged: (file, err) => damaged.push(`${file}: ${err.message}`),
  // Tiny limits, so that compactions and ceiling entries happen in every run.
  compactBytes: 2048,
});
const spool = new Spool(log, { reserveBlock: 7 });
say({ open: spool.pending().map((r) => r.seq), damaged });

const durable = [];
for (;;) {
  const n = 1 + Math.floor(random() * 12);
  const seqs = [];
  for (let i = 0; i < n; i++) {
    seqs.push(spool.append('progress', { taskId: 'tsk_crash', attempt: 1, percent: i, atMs: 1 }).seq);
  }
  say({ appended: seqs });
  await spool.flushed();
  say({ durable: seqs });
  durable.push(...seqs);
  if (random() < 0.5 && durable.length > 0) {
    const acked = durable.splice(0, Math.floor(random() * durable.length) + 1);
    spool.ack(acked);
    say({ acked });
  }
}
