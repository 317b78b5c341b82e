/**
 * The worker half of the dispatch bench's BullMQ baseline: K BullMQ workers in one process (like
 * the bare baseline's clients), each running `slots` no-op jobs at a time. Prints "ready" once
 * every worker listens; closes them on SIGTERM.
 *
 * Usage (started by bullmq.ts): node --import tsx bench/bullmq-workers.ts <redis-url> <queue> <workers> <slots>
 */
import { Worker } from 'bullmq';

const [url, queue, workersArg, slotsArg] = process.argv.slice(2);
const workers = Number(workersArg);
const slots = Number(slotsArg);
if (!url || !queue || !Number.isInteger(workers) || workers < 1 || !Number.isInteger(slots) || slots < 1) {
  process.stderr.write('usage: bullmq-workers.ts <redis-url> <queue> <workers> <slots>\n');
  process.exit(2);
}

const started = Array.from(
  { length: workers },
  () =>
    new Worker(queue, async () => ({ ok: true }), {
      connection: { url, maxRetriesPerRequest: null },
      concurrency: slots,
    }),
);
for (const w of started) w.on('error', (err) => process.stderr.write(`worker: ${err.message}\n`));
await Promise.all(started.map((w) => w.waitUntilReady()));
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void Promise.all(started.map((w) => w.close())).finally(() => process.exit(0));
});
