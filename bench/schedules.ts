/**
 * The scheduler's catch-up after downtime: N user schedules (default 10,000), the control plane
 * stopped, the fake clock moved 12 hours, restarted. Measured per store:
 *
 * - catch-up seconds, from the restart to every schedule's fire claimed;
 * - the control plane's event-loop delay over the catch-up (p99 and max of one /metrics window
 *   opened once the process listens: prom-client resets it at each scrape).
 *
 * Baseline, in the same run and database: the writes a catch-up must make with no scheduler at
 * all — the same claims, backup tasks and events (copied from what the catch-up wrote), deleted
 * and inserted again through Kysely, 50 fires' rows per transaction. The ratio catch-up/baseline
 * is the scheduler's cost over bare writes. The CPU seconds the control plane (and the database
 * server) used meanwhile are printed too: on a shared machine they move less than wall time.
 * Checked against the targets: catch-up under 5 s, the loop never blocked 50 ms at a time.
 */
import path from 'node:path';
import type { Store } from '@cairn/control-plane';
import { clockEnv, setClock, tickedAt } from '@cairn/test-harness/clock';
import { freshDatabase, type Backend, type TestDatabase } from '@cairn/test-harness/databases';
import { startControlPlane, tempDir, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { manySchedules, SCALE_KINDS } from '@cairn/test-harness/schedules';
import { waitFor } from '@cairn/test-harness/wait';
import { cpuWindow, pidsNamed } from './cpu.js';
import { disturbance, findMysql } from './common.js';

const T0 = '2026-03-28T18:00:00Z';
const T1 = '2026-03-29T06:00:00Z';
const TARGET = { catchUpS: 5, loopMaxMs: 50 };
const PER_TRANSACTION = 50;

export interface SchedulesOptions {
  stores?: Backend[];
  schedules: number;
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

let running: { cp?: ControlPlaneProc; db?: TestDatabase; store?: Store } = {};

export async function schedulesInterrupted(): Promise<void> {
  await running.store?.close();
  await running.cp?.proc.stop();
  await running.db?.drop();
}

async function metricsText(cp: ControlPlaneProc): Promise<string> {
  return (await fetch(`${cp.url}/metrics`)).text();
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

async function claimed(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('scheduleFires')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('fireAt', '>', Date.parse(T0))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function runStore(backend: Backend, n: number) {
  const db = await freshDatabase(backend);
  running.db = db;
  const clock = path.join(tempDir('bench-clock-'), 'now');
  setClock(clock, T0);
  let cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, env: clockEnv(clock) });
  running.cp = cp;
  log(`${backend}: storing ${n} user schedules`);
  const { store } = await manySchedules(cp, db.url, n, SCALE_KINDS, T0);
  running.store = store;
  setClock(clock, '2026-03-28T18:00:01Z');
  await tickedAt(cp, '2026-03-28T18:00:01Z');
  await cp.proc.stop();
  setClock(clock, T1);
  log(`${backend}: restarting 12 h later`);
  const started = performance.now();
  cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, port: cp.port, env: clockEnv(clock) });
  running.cp = cp;
  await metricsText(cp); // opens the loop-delay window
  const cpu = cpuWindow({
    'control plane': [cp.proc.child.pid],
    bench: [process.pid],
    ...(backend === 'mysql' ? { 'database server': pidsNamed('mariadbd', 'mysqld') } : {}),
  });
  await waitFor(async () => (await claimed(store)) >= n, 'every fire claimed', 600_000);
  const catchUpS = (performance.now() - started) / 1000;
  const use = cpu();
  const text = await metricsText(cp);
  const loopP99Ms = gauge(text, 'cairn_process_nodejs_eventloop_lag_p99_seconds') * 1000;
  const loopMaxMs = gauge(text, 'cairn_process_nodejs_eventloop_lag_max_seconds') * 1000;
  await cp.proc.stop();
  running.cp = undefined;

  // Baseline: the same rows, written again with no scheduler.
  const fires = await store.db.selectFrom('scheduleFires').selectAll().where('fireAt', '>', Date.parse(T0)).execute();
  const tasks = await store.db.selectFrom('tasks').selectAll().where('kind', '=', 'backup').execute();
  const events = await store.db
    .selectFrom('events')
    .selectAll()
    .where('type', 'in', ['schedule.caught_up', 'task.queued'])
    .execute();
  await store.db.deleteFrom('events').where('type', 'in', ['schedule.caught_up', 'task.queued']).execute();
  await store.db.deleteFrom('tasks').where('kind', '=', 'backup').execute();
  await store.db.deleteFrom('scheduleFires').where('fireAt', '>', Date.parse(T0)).execute();
  const share = (total: number) => Math.max(1, Math.round((total * PER_TRANSACTION) / fires.length));
  const b0 = performance.now();
  for (let i = 0, t = 0, e = 0; i < fires.length; i += PER_TRANSACTION) {
    const [tn, en] = [share(tasks.length), share(events.length)];
    await store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('scheduleFires')
        .values(fires.slice(i, i + PER_TRANSACTION))
        .execute();
      const ts = tasks.slice(t, t + tn);
      if (ts.length > 0) await trx.insertInto('tasks').values(ts).execute();
      const es = events.slice(e, e + en).map(({ id: _id, ...rest }) => rest);
      if (es.length > 0) await trx.insertInto('events').values(es).execute();
    });
    t += tn;
    e += en;
  }
  const baselineS = (performance.now() - b0) / 1000;
  await store.close();
  await db.drop();
  running = {};
  return {
    backend,
    schedules: n,
    catchUpS,
    baselineS,
    ratio: catchUpS / baselineS,
    loopP99Ms,
    loopMaxMs,
    foreignPct: use?.foreignPct ?? null,
    cpu: use?.byGroup ?? null,
    tasks: tasks.length,
    events: events.length,
  };
}

const cpuSec = (c: { userSec: number; systemSec: number } | undefined) =>
  c === undefined ? '?' : (c.userSec + c.systemSec).toFixed(2);

export async function runSchedulesBench(opts: SchedulesOptions): Promise<void> {
  const stores: Backend[] = opts.stores ?? ['sqlite', 'mysql'];
  const results = [];
  for (const backend of stores) {
    if (backend === 'mysql') {
      const found = await findMysql(opts.stores?.includes('mysql') ?? false);
      if ('skipped' in found) {
        log(`mysql skipped: ${found.skipped}`);
        continue;
      }
      log(`mysql: ${found.version} (${found.durability})`);
    }
    results.push(await runStore(backend, opts.schedules));
  }
  const lines = [`schedules catch-up: ${opts.schedules} user schedules, 12 h down (${T0} → ${T1})`];
  for (const r of results) {
    const ok = r.catchUpS < TARGET.catchUpS && r.loopMaxMs < TARGET.loopMaxMs;
    const { disturbed } = disturbance([r.foreignPct === null ? null : { foreignPct: r.foreignPct }]);
    lines.push(
      `  ${r.backend.padEnd(6)} catch-up ${r.catchUpS.toFixed(2)} s (restart to every fire claimed; ${r.tasks} tasks, ${r.events} events)` +
        ` | baseline bare writes ${r.baselineS.toFixed(2)} s | ratio ${r.ratio.toFixed(1)}x` +
        (r.cpu
          ? ` | CPU: control plane ${cpuSec(r.cpu['control plane'])} s` +
            (r.cpu['database server'] ? `, database server ${cpuSec(r.cpu['database server'])} s` : '')
          : '') +
        ` | event-loop delay p99 ${r.loopP99Ms.toFixed(1)} ms, max ${r.loopMaxMs.toFixed(1)} ms` +
        ` | ${ok ? 'TARGET MET' : 'TARGET MISSED'} (catch-up < ${TARGET.catchUpS} s, loop max < ${TARGET.loopMaxMs} ms)` +
        (r.foreignPct === null ? '' : ` | foreign CPU ${r.foreignPct.toFixed(1)} %`) +
        (disturbed ? ' | WARNING: disturbed run (other processes took the CPU), figures suspect' : ''),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(results)}\n`);
}
