/**
 * The dispatch bench's BullMQ baseline: the same number of no-op jobs at the same concurrency
 * (agents × slots) through BullMQ 5 on a local Redis. The bench process adds the jobs (at most
 * 32 adds in flight, like the real path's HTTP creates); K workers in one child process
 * (bullmq-workers.ts) run them. Elapsed: first add → last job finished (Redis's own
 * timestamps); latency per job: finishedOn − timestamp (created → finished, queueing included,
 * like the real path's p50/p99). Redis runs as the bench starts it: no persistence, so this
 * baseline does not fsync at all.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { log, pool, startChild } from './common.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

export interface BullRun {
  elapsedMs: number;
  latenciesMs: number[];
  cpu: CpuUse | null;
}

/** Redis must answer on 127.0.0.1:6379; if it does not, the bench starts one (no persistence). */
function ensureRedis(): void {
  const ping = () => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping'], { encoding: 'utf8' });
  if (ping().stdout?.trim() === 'PONG') return;
  log('starting redis-server on 127.0.0.1:6379 (no persistence)');
  const r = spawnSync(
    'redis-server',
    ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'],
    { encoding: 'utf8' },
  );
  if (r.error || r.status !== 0)
    throw new Error(`BullMQ baseline: no Redis and redis-server did not start: ${r.error?.message ?? r.stderr}`);
  for (let i = 0; i < 50 && ping().stdout?.trim() !== 'PONG'; i++) spawnSync('sleep', ['0.1']);
  if (ping().stdout?.trim() !== 'PONG') throw new Error('BullMQ baseline: redis-server started but does not answer');
}

export async function runBullmq(opts: { tasks: number; agents: number; slots: number }): Promise<BullRun> {
  ensureRedis();
  const name = `cairn-bench-${randomUUID()}`;
  const connection = { url: REDIS_URL, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const workers = await startChild('bullmq-workers.ts', [REDIS_URL, name, String(opts.agents), String(opts.slots)]);
  try {
    await events.waitUntilReady();
    let done = 0;
    let failed: string | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      events.on('completed', () => {
        if (++done === opts.tasks) resolve();
      });
      events.on('failed', ({ jobId, failedReason }) => {
        failed = `job ${jobId} failed: ${failedReason}`;
        reject(new Error(`BullMQ baseline: ${failed}`));
      });
    });
    const cpu = cpuWindow({
      bench: [process.pid],
      workers: [workers.proc.child.pid],
      redis: pidsNamed('redis-server'),
    });
    const t0 = Date.now();
    await pool(opts.tasks, 32, async (i) => {
      await queue.add('backup', { instanceId: `ins_${i % 200}`, mode: 'FULL' });
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`BullMQ baseline: ${done}/${opts.tasks} jobs finished after 120 s`)),
        120_000,
      ).unref(),
    );
    await Promise.race([finished, timeout]);
    const use = cpu();
    const jobs = await queue.getJobs(['completed'], 0, opts.tasks);
    if (jobs.length !== opts.tasks) throw new Error(`BullMQ baseline: ${jobs.length}/${opts.tasks} jobs completed`);
    const lastEnd = Math.max(...jobs.map((j) => j.finishedOn ?? 0));
    return { elapsedMs: lastEnd - t0, latenciesMs: jobs.map((j) => (j.finishedOn ?? 0) - j.timestamp), cpu: use };
  } finally {
    await workers.proc.stop();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}
