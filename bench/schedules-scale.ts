/**
 * B5 schedules at scale: N user schedules (default 100,000) in one control plane under the test
 * clock (CAIRN_TEST_CLOCK_FILE, ticks every 50 ms). Measured per store:
 *
 * - the cost of a tick with nothing due: mean of `cairn_scheduler_tick_duration_seconds` over a
 *   few seconds of idle ticks, and the control plane's CPU meanwhile;
 * - 1 % of the schedules (1,000 of 100,000) falling due at once: from the clock file's change to
 *   their backup tasks queued (counted in the database every 5 ms; no agent, so they stay queued);
 * - memory per schedule: the control plane's RSS and V8 heap before loading and after the first
 *   tick has computed every next fire time, each after two full garbage collections, divided by N.
 *
 * A second baseline, the floor of any idle tick that asks its database: one `select 1` from the bench's
 * own connection after the same idle gap as a tick's (see {@link idleRead}). Ratio: idle tick ÷ it.
 *
 * Baseline in the same process tree: what a scheduler without stored next fire times would do on
 * every tick — croner parsing and `nextRun` for all N expressions, in the bench process (three runs: the A/A
 * band). Ratio: idle tick ÷ one such pass. Targets: ≤ 1 ms per idle tick, the due tasks queued
 * within 1 s, ≤ 2 KB per schedule.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cron } from 'croner';
import type { Store } from '@cairn/control-plane';
import { clockEnv, setClock, tickedAt } from '@cairn/test-harness/clock';
import type { Backend } from '@cairn/test-harness/databases';
import { tempDir, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { manySchedules } from '@cairn/test-harness/schedules';
import {
  band,
  bandText,
  chooseStores,
  diagnostics,
  disturbance,
  log,
  metric,
  settledRssKiB,
  startStack,
  writeResults,
  type Band,
} from './common.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';

export interface SchedulesScaleOptions {
  schedules: number;
  stores: Backend[] | undefined;
  /** Put every instance under an RPO of this many minutes (0: none), so the RPO watch has them all to watch. */
  rpoMinutes: number;
}

const T0 = '2026-03-28T18:00:00Z';
const FIRST_TICK = '2026-03-28T18:00:01Z';
const IDLE_AT = '2026-03-28T18:10:00Z';
const DUE_AT = '2026-03-28T18:30:00Z';
/** One schedule in DUE_SHARE fires at 18:30 UTC; the others at 03:00 UTC, outside the run. */
const DUE_SHARE = 100;
const DUE = { cron: '30 18 * * *', timezone: 'UTC' };
const IDLE = { cron: '0 3 * * *', timezone: 'Europe/Paris' };
/** Twice the control plane's default CAIRN_SCHEDULER_REFRESH_MS: the window holds an ask or two. */
const IDLE_SECONDS = 10;
const TARGET = { idleTickMs: 1, dueQueuedMs: 1000, bytesPerSchedule: 2048 };
/** A pass over 100,000 takes seconds: two are the A/A band. */
const BASELINE_RUNS = 2;

interface StoreRun {
  store: Backend;
  loadS: number;
  firstTickS: number;
  idleTickMs: number;
  idleTicks: number;
  /** Idle ticks that asked the store what is due (the others went on what the last ask answered). */
  idleAsks: number;
  /** Mean time of those asks (`cairn_scheduler_probe_duration_seconds`). */
  askMs: number | null;
  idleCpuPct: number | null;
  /** Mean of one `select 1` from the bench's own connection, each a tick's period after the last. */
  idleReadMs: number;
  due: number;
  dueQueuedMs: number;
  rssBytesPerSchedule: number | null;
  heapBytesPerSchedule: number | null;
  cpu: (CpuUse | null)[];
}

async function metrics(cp: ControlPlaneProc): Promise<string> {
  return (await fetch(`${cp.url}/metrics`)).text();
}

const need = (text: string, name: string): number => {
  const v = metric(text, name);
  if (v === null) throw new Error(`/metrics has no ${name}`);
  return v;
};

async function queuedBackups(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('kind', '=', 'backup')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function runStore(backend: Backend, n: number, rpoMinutes: number): Promise<StoreRun> {
  const clock = path.join(tempDir('bench-clock'), 'now');
  setClock(clock, T0);
  const stack = await startStack(backend, { env: clockEnv(clock) });
  const { cp } = stack;
  let store: Store | undefined;
  try {
    const pid = cp.proc.child.pid!;
    const heap = async () => need(await metrics(cp), 'cairn_process_nodejs_heap_size_used_bytes');
    await tickedAt(cp, T0);
    const before = { rss: await settledRssKiB(pid), heap: await heap() };

    log(`${backend}: storing ${n} user schedules`);
    const kinds = [DUE, ...Array.from({ length: DUE_SHARE - 1 }, () => IDLE)];
    const l0 = performance.now();
    store = (await manySchedules(cp, stack.db.url, n, kinds, T0, { rpoMinutes })).store;
    const loadS = (performance.now() - l0) / 1000;
    const due = Math.ceil(n / DUE_SHARE);

    log(`${backend}: first tick (computes every next fire time)`);
    const f0 = performance.now();
    setClock(clock, FIRST_TICK);
    await tickedAt(cp, FIRST_TICK);
    const firstTickS = (performance.now() - f0) / 1000;
    const after = { rss: await settledRssKiB(pid), heap: await heap() };

    log(`${backend}: ${IDLE_SECONDS} s of idle ticks`);
    setClock(clock, IDLE_AT);
    await tickedAt(cp, IDLE_AT);
    const m0 = await metrics(cp);
    // The database server is part of the stack, not a disturbance, in every window.
    const groups = () => ({
      'control plane': [pid],
      bench: [process.pid],
      ...(backend === 'mysql' ? { 'database server': pidsNamed('mariadbd', 'mysqld') } : {}),
    });
    const idleCpu = cpuWindow(groups());
    const c0 = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleUse = idleCpu();
    const idleS = (performance.now() - c0) / 1000;
    const m1 = await metrics(cp);
    const delta = (name: string) => need(m1, name) - need(m0, name);
    const idleTicks = delta('cairn_scheduler_tick_duration_seconds_count');
    if (idleTicks < 1) throw new Error('no scheduler tick completed while idle');
    const idleTickMs = (delta('cairn_scheduler_tick_duration_seconds_sum') * 1000) / idleTicks;
    const idleAsks = delta('cairn_scheduler_probe_duration_seconds_count');
    const askMs = idleAsks > 0 ? (delta('cairn_scheduler_probe_duration_seconds_sum') * 1000) / idleAsks : null;
    const cpSec = idleUse?.byGroup['control plane'];
    if ((await queuedBackups(store)) !== 0) throw new Error('backup tasks were queued before any schedule was due');
    const idleReadMs = await idleRead(store);

    log(`${backend}: ${due} schedules due at ${DUE_AT}`);
    const dueCpu = cpuWindow(groups());
    const d0 = performance.now();
    setClock(clock, DUE_AT);
    for (;;) {
      const queued = await queuedBackups(store);
      if (queued >= due) break;
      if (performance.now() - d0 > 120_000) throw new Error(`${queued}/${due} due backups queued after 120 s`);
      if (!cp.proc.running) throw new Error('the control plane exited');
      await new Promise((r) => setTimeout(r, 5));
    }
    const dueQueuedMs = performance.now() - d0;
    await tickedAt(cp, DUE_AT);
    const queued = await queuedBackups(store);
    if (queued !== due) throw new Error(`${queued} backup tasks queued for ${due} due schedules`);
    const dueUse = dueCpu();

    const perSchedule = (a: number | null, b: number | null, unit: number) =>
      a === null || b === null ? null : ((b - a) * unit) / n;
    return {
      store: backend,
      loadS,
      firstTickS,
      idleTickMs,
      idleTicks,
      idleAsks,
      askMs,
      idleCpuPct: cpSec ? (100 * (cpSec.userSec + cpSec.systemSec)) / idleS : null,
      idleReadMs,
      due,
      dueQueuedMs,
      rssBytesPerSchedule: perSchedule(before.rss, after.rss, 1024),
      heapBytesPerSchedule: perSchedule(before.heap, after.heap, 1),
      cpu: [idleUse, dueUse],
    };
  } catch (err) {
    throw new Error(`schedules-scale on ${backend} failed: ${(err as Error).message}\n${diagnostics(stack.procs)}`, {
      cause: err,
    });
  } finally {
    await store?.close();
    await stack.cleanup();
  }
}

/** The scheduler's period under the test clock: the gap before each idle read. */
const TICK_MS = 50;
const IDLE_READS = 100;

/**
 * The floor of any tick that asks its database something: the mean time of `select 1` from the
 * bench's own connection to the same database, each read {@link TICK_MS} after the last one ended,
 * as the scheduler's probe is. A statement after an idle gap pays for waking both ends (0.6 ms on
 * MariaDB here, against under 0.1 ms back to back).
 */
async function idleRead(store: Store): Promise<number> {
  let total = 0;
  for (let i = 0; i < IDLE_READS; i++) {
    await new Promise((r) => setTimeout(r, TICK_MS));
    const t0 = performance.now();
    await store.db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
    total += performance.now() - t0;
  }
  return total / IDLE_READS;
}

/**
 * ms for croner to compute the next run of every schedule once: the scheduler that keeps no
 * next fire time. Each expression is parsed in the pass too (100,000 parsed Cron objects kept
 * alive would take gigabytes).
 */
function cronerPasses(schedules: number): Band {
  const from = new Date(IDLE_AT);
  const pass = (n: number) => {
    let found = 0;
    for (let i = 0; i < n; i++) {
      const k = i % DUE_SHARE === 0 ? DUE : IDLE;
      if (new Cron(k.cron, { timezone: k.timezone }).nextRun(from)) found++;
    }
    if (found !== n) throw new Error(`croner found a next run for ${found} of ${n} expressions`);
  };
  pass(Math.ceil(schedules / 10)); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < BASELINE_RUNS; r++) {
    const t0 = performance.now();
    pass(schedules);
    runs.push(performance.now() - t0);
  }
  return band(runs);
}

export async function runSchedulesScaleBench(opts: SchedulesScaleOptions): Promise<void> {
  const startedAt = new Date();
  const stores = await chooseStores(opts.stores);
  const runs: StoreRun[] = [];
  const windows: (CpuUse | null)[] = [];
  log(`baseline: croner nextRun for ${opts.schedules} expressions ×${BASELINE_RUNS}`);
  const baselineCpu = cpuWindow({ bench: [process.pid] });
  const baseline = cronerPasses(opts.schedules);
  windows.push(baselineCpu());
  for (const s of stores) {
    const r = await runStore(s.store, opts.schedules, opts.rpoMinutes);
    runs.push(r);
    windows.push(...r.cpu);
  }
  const { foreignPct, disturbed } = disturbance(windows);
  const kb = (v: number | null) => (v === null ? '?' : (v / 1024).toFixed(2));
  const met = (r: StoreRun) =>
    r.idleTickMs <= TARGET.idleTickMs &&
    r.dueQueuedMs <= TARGET.dueQueuedMs &&
    (r.rssBytesPerSchedule ?? Infinity) <= TARGET.bytesPerSchedule;
  await writeResults({
    benchmark: 'schedules-scale',
    startedAt,
    title: `schedules-scale: ${opts.schedules} user schedules${opts.rpoMinutes ? `, every instance under an RPO of ${opts.rpoMinutes} minutes` : ''}, test clock, ticks every 50 ms`,
    options: { ...opts, dueShare: DUE_SHARE, idleSeconds: IDLE_SECONDS },
    head: [
      'store',
      'idle tick ms',
      'asks / ticks',
      'ask ms',
      '÷ croner pass',
      'idle CPU % core',
      'idle read ms',
      '÷ idle read',
      'due',
      'due → queued ms',
      'RSS KB/sched',
      'heap KB/sched',
      'load s',
      'first tick s',
      'targets',
    ],
    rows: runs.map((r) => [
      r.store,
      r.idleTickMs.toFixed(2),
      `${r.idleAsks} / ${r.idleTicks}`,
      r.askMs === null ? '-' : r.askMs.toFixed(2),
      (r.idleTickMs / baseline.median).toExponential(1),
      r.idleCpuPct === null ? '?' : r.idleCpuPct.toFixed(1),
      r.idleReadMs.toFixed(2),
      (r.idleTickMs / r.idleReadMs).toFixed(1),
      String(r.due),
      r.dueQueuedMs.toFixed(0),
      kb(r.rssBytesPerSchedule),
      kb(r.heapBytesPerSchedule),
      r.loadS.toFixed(1),
      r.firstTickS.toFixed(1),
      met(r) ? 'MET' : 'MISSED',
    ]),
    notes: [
      `baseline: croner nextRun for all ${opts.schedules} expressions, one pass: ${bandText(baseline, 1)} ms`,
      `idle tick: mean of cairn_scheduler_tick_duration_seconds over ${IDLE_SECONDS} s of ticks with nothing due`,
      "asks / ticks: idle ticks that asked the store what is due (one when nothing committed here since, no known fire time came, and CAIRN_SCHEDULER_REFRESH_MS, 5 s, passed since the last ask: at the default tick of 1 s, one in 5); ask ms: their asks' mean (cairn_scheduler_probe_duration_seconds)",
      `idle read: mean of ${IDLE_READS} \`select 1\` from the bench's own connection to the same database, each ${TICK_MS} ms after the last (the tick's period): what any statement costs after an idle gap here, the floor of a tick that asks its database anything`,
      'due → queued: from writing the clock file to the last due backup task counted in the database (polled every 5 ms; one tick is 50 ms)',
      'memory per schedule: RSS and V8 heap after the first tick minus before loading, each after two full garbage collections, ÷ N',
      `targets: idle tick ≤ ${TARGET.idleTickMs} ms, due queued ≤ ${TARGET.dueQueuedMs} ms, ≤ ${TARGET.bytesPerSchedule / 1024} KB per schedule (RSS)`,
    ],
    figures: { baselineMs: baseline, runs: runs.map(({ cpu: _cpu, ...r }) => r) },
    disturbed,
    foreignPct,
  });
}
