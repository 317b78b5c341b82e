/**
 * B3 progress and events into MariaDB: T tasks (default 1000: 10 agents × 100 slots) running at
 * once, each reporting progress once a second (the dummy plugin with `steps` = `durationMs` in
 * seconds) plus its start event. Real agents (plugins inline: 100 worker threads per agent would
 * measure thread memory, not reports), one control plane on MariaDB/MySQL. Measured over the
 * window in which every task is running (no creates, no ends):
 *
 * - reports committed per second: progress rows counted in `task_progress` at the window's ends;
 * - p50/p99 emit → commit: emit = the report's `atMs` (stored as the row's `at`); commit = when
 *   the bench first saw the row, polling `task_progress` by primary key every POLL_MS. The poll
 *   reads only new rows (ids above the highest seen, less a margin for ids committed out of
 *   order), so it adds little load; it makes the figure an upper bound, up to POLL_MS late.
 *   The control plane's own metrics count reports received, not committed, so they cannot say it.
 *
 * Baselines on the same server in the same run, with mysql2 from the bench process on one
 * connection, into a table shaped like `task_progress`: the ceiling — multi-row INSERTs of
 * BATCH rows, one statement per transaction — and the floor — one INSERT per row, each its own
 * transaction. Each BASELINE_RUNS times (the A/A band; the median is the baseline). Headline:
 * committed reports/s ÷ the ceiling.
 * A kill -9 of the control plane mid-run is left to test/e2e/crash-recovery.test.ts (every
 * progress report arrives exactly once across one), not measured here.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection, type Connection } from 'mysql2/promise';
import { openStore, type Store } from '@cairn/control-plane';
import {
  band,
  bandText,
  chooseStores,
  diagnostics,
  disturbance,
  dummyInstances,
  log,
  percentile,
  pool,
  startAgents,
  startStack,
  writeResults,
  type Band,
} from './common.js';
import { cpuWindow, pidsNamed } from './cpu.js';

export interface ProgressOptions {
  agents: number;
  slots: number;
  seconds: number;
  /** Progress reports per task a second. */
  rate: number;
}

const POLL_MS = 100;
/** Ids below the highest seen that a poll reads again (MariaDB may commit ids out of order). */
const POLL_MARGIN = 2000;
/** Rows per multi-row INSERT in the ceiling baseline. */
const BATCH = 100;
/**
 * Rows per ceiling run: 1.5-2.5 s at the 40,000-65,000 a second measured here. A shorter run
 * (20,000 rows, under half a second) landed on whatever the server was doing just then: its two
 * runs differed by 36-59 %.
 */
const CEILING_ROWS = 100_000;
const FLOOR_ROWS = 2_000;
/** Runs of each baseline; the headline divides by their median. */
const BASELINE_RUNS = 3;

async function progressRows(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('taskProgress')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function running(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'running')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** rows/s inserting progress-like rows: `perStatement` rows a statement, each statement its own transaction. */
async function insertRate(conn: Connection, rows: number, perStatement: number): Promise<number> {
  // Emptied at once (a delete would leave the server purging rows under the next run).
  await conn.query('TRUNCATE TABLE bench_progress');
  const values = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => [
      `tsk_bench_${(from + i) % 1000}`,
      1,
      'agt_bench',
      from + i,
      50,
      1_000_000,
      2_000_000,
      'backup step 30/60',
      Date.now(),
    ]);
  const t0 = performance.now();
  for (let i = 0; i < rows; i += perStatement) {
    await conn.beginTransaction();
    await conn.query(
      'INSERT INTO bench_progress (task_id, attempt, agent_id, spool_seq, percent, bytes_done, bytes_total, message, at) VALUES ?',
      [values(Math.min(perStatement, rows - i), i)],
    );
    await conn.commit();
  }
  return (rows * 1000) / (performance.now() - t0);
}

async function baselines(url: string): Promise<{ ceiling: Band; floor: Band }> {
  const conn = await createConnection({ uri: url });
  try {
    // Shaped like task_progress (store/migrations): the same columns and the same unique key.
    await conn.query(`CREATE TABLE bench_progress (
      id BIGINT AUTO_INCREMENT PRIMARY KEY, task_id VARCHAR(64) NOT NULL, attempt INT NOT NULL,
      agent_id VARCHAR(64) NOT NULL, spool_seq BIGINT NOT NULL, percent DOUBLE NOT NULL,
      bytes_done BIGINT NOT NULL, bytes_total BIGINT NOT NULL, message TEXT NULL, at BIGINT NOT NULL,
      UNIQUE KEY bench_progress_agent_seq (agent_id, spool_seq), KEY bench_progress_task (task_id)
    ) ENGINE=InnoDB`);
    const ceiling: number[] = [];
    const floor: number[] = [];
    for (let r = 0; r < BASELINE_RUNS; r++) {
      ceiling.push(await insertRate(conn, CEILING_ROWS, BATCH));
      floor.push(await insertRate(conn, FLOOR_ROWS, 1));
    }
    await conn.query('DROP TABLE bench_progress');
    return { ceiling: band(ceiling), floor: band(floor) };
  } finally {
    await conn.end();
  }
}

export async function runProgressBench(opts: ProgressOptions): Promise<void> {
  const startedAt = new Date();
  const [mysql] = await chooseStores(['mysql']);
  const tasks = opts.agents * opts.slots;
  const stack = await startStack('mysql', {
    // Each agent reports `slots` × `rate` progress reports a second; the default frame budget
    // (200/s, of which agents use half) would pace them, and the bench would measure the pacing.
    env: {
      CAIRN_AGENT_FRAME_RATE: String(Math.max(200, opts.slots * opts.rate * 4)),
      // Likewise the byte budget (agents keep to half of it): about 200 bytes a report, twice over.
      CAIRN_AGENT_BYTE_RATE: String(Math.max(128 * 1024, opts.slots * opts.rate * 800)),
      CAIRN_MAX_CONCURRENT_TASKS: String(tasks),
    },
  });
  const { cp, api, procs } = stack;
  const store = openStore(stack.db.url);
  const cpus = [];
  let figures;
  try {
    const instances = await dummyInstances(api, tasks, {
      durationMs: opts.seconds * 1000,
      steps: opts.seconds * opts.rate,
      sizeBytes: 1_000_000_000,
    });
    await startAgents(stack, opts.agents, { slots: opts.slots, args: ['--plugin-isolation', 'inline'] });
    log(`mysql: ${tasks} tasks of ${opts.seconds} s, ${opts.agents} agents × ${opts.slots} slots`);
    const t0 = Date.now();
    const created: string[] = [];
    await pool(tasks, 32, async (i) => {
      created[i] = (await api.expect(202, 'POST', `/v1/instances/${instances[i]}/backups`)).id;
    });
    const deadline = t0 + opts.seconds * 1000;
    for (;;) {
      if ((await running(store)) >= tasks) break;
      if (Date.now() > deadline)
        throw new Error(
          `only ${await running(store)} of ${tasks} tasks were running ${opts.seconds} s after the first create: ` +
            'dispatch did not keep up with the ramp (fewer --agents/--slots, or longer --seconds)',
        );
      await sleep(200);
    }
    // The window: every task running, until shortly before the first one can end.
    const windowEnd = deadline - 2000;
    const windowMs = windowEnd - Date.now();
    if (windowMs < 3000) throw new Error(`ramp-up took too long: a ${windowMs} ms window is left; raise --seconds`);
    log(`mysql: all running; measuring ${(windowMs / 1000).toFixed(1)} s`);
    const cpu = cpuWindow({
      'control plane': [cp.proc.child.pid],
      agents: procs.slice(1).map(([, p]) => p.child.pid),
      bench: [process.pid],
      'database server': pidsNamed('mariadbd', 'mysqld'),
    });
    const startRows = await progressRows(store);
    const seen = new Set<number>();
    const lags: number[] = [];
    let high = Number(
      (
        await store.db
          .selectFrom('taskProgress')
          .select((eb) => eb.fn.max('id').as('m'))
          .executeTakeFirstOrThrow()
      ).m ?? 0,
    );
    const w0 = Date.now();
    while (Date.now() < windowEnd) {
      const rows = await store.db
        .selectFrom('taskProgress')
        .select(['id', 'at'])
        .where('id', '>', Math.max(0, high - POLL_MARGIN))
        .execute();
      const now = Date.now();
      for (const r of rows)
        if (!seen.has(r.id)) {
          seen.add(r.id);
          high = Math.max(high, r.id);
          if (r.at >= w0) lags.push(now - r.at);
        }
      await sleep(POLL_MS);
    }
    const w1 = Date.now();
    const committed = (await progressRows(store)) - startRows;
    const use = cpu();
    cpus.push(use);
    for (const [name, p] of procs) if (!p.running) throw new Error(`${name} exited during the run`);
    if (lags.length === 0) throw new Error('no progress report was committed in the window');

    log('mysql: waiting for every task to succeed');
    for (;;) {
      const left = await store.db
        .selectFrom('tasks')
        .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('kind', '=', 'backup')
        .groupBy('state')
        .execute();
      const bad = left.filter((r) => !['queued', 'dispatched', 'running', 'succeeded'].includes(r.state));
      if (bad.length > 0) throw new Error(`tasks ended badly: ${JSON.stringify(bad)}`);
      if (left.every((r) => r.state === 'succeeded')) break;
      if (Date.now() > deadline + 120_000) throw new Error(`tasks not done: ${JSON.stringify(left)}`);
      await sleep(500);
    }
    figures = {
      tasks,
      windowS: (w1 - w0) / 1000,
      committedPerSec: (committed * 1000) / (w1 - w0),
      expectedPerSec: tasks * opts.rate,
      emitToCommitP50Ms: percentile(lags, 50),
      emitToCommitP99Ms: percentile(lags, 99),
      sampled: lags.length,
      cpu: use,
    };
  } catch (err) {
    throw new Error(`progress failed: ${(err as Error).message}\n${diagnostics(procs)}`, { cause: err });
  } finally {
    await store.close();
  }
  log(`baselines: mysql2 multi-row ceiling and one-row floor, ${BASELINE_RUNS} runs each`);
  const bCpu = cpuWindow({ bench: [process.pid], 'database server': pidsNamed('mariadbd', 'mysqld') });
  let base;
  try {
    base = await baselines(stack.db.url);
  } finally {
    await stack.cleanup();
  }
  cpus.push(bCpu());
  const { foreignPct, disturbed } = disturbance(cpus);
  const ratio = figures.committedPerSec / base.ceiling.median;
  // Where a committed report's CPU went, by process group, in the timed window.
  const committedInWindow = figures.committedPerSec * figures.windowS;
  const perReport = Object.entries(figures.cpu?.byGroup ?? {})
    .map(([group, g]) => {
      const us = (sec: number) => ((sec * 1e6) / committedInWindow).toFixed(0);
      return `${group} ${us(g.userSec)} + ${us(g.systemSec)} µs`;
    })
    .join(', ');
  await writeResults({
    benchmark: 'progress',
    startedAt,
    title: `progress: ${tasks} running tasks (${opts.agents} agents × ${opts.slots} slots), ${opts.rate} progress report${opts.rate === 1 ? '' : 's'} a second each, into ${mysql!.version} (${mysql!.durability})`,
    options: { ...opts, pollMs: POLL_MS, batch: BATCH },
    head: ['what', 'rows/s', '÷ ceiling', 'p50 / p99 emit → commit ms'],
    rows: [
      [
        'Cairn: progress reports committed',
        figures.committedPerSec.toFixed(0),
        ratio.toFixed(3),
        `${figures.emitToCommitP50Ms.toFixed(0)} / ${figures.emitToCommitP99Ms.toFixed(0)}`,
      ],
      ['ceiling: mysql2, 100-row INSERTs, one per transaction', base.ceiling.median.toFixed(0), '1.00', ''],
      [
        'floor: mysql2, one INSERT per row and transaction',
        base.floor.median.toFixed(0),
        (base.floor.median / base.ceiling.median).toFixed(2),
        '',
      ],
    ],
    notes: [
      `offered load: ${tasks * opts.rate} reports/s (${opts.rate} per running task a second); measured over ${figures.windowS.toFixed(1)} s with every task running, ${figures.sampled} reports timed`,
      `emit → commit: the report's atMs → first seen by a ${POLL_MS} ms poll of task_progress (an upper bound, up to ${POLL_MS} ms late)`,
      `ceiling A/A: ${bandText(base.ceiling)} rows/s; floor A/A: ${bandText(base.floor)} rows/s`,
      `CPU a committed report in the window (user + system): ${perReport}; the machine ${figures.cpu?.machineBusyPct.toFixed(0)} % busy`,
      'kill -9 mid-run is not measured here: test/e2e/crash-recovery.test.ts holds that every progress report arrives exactly once across one',
      'when Cairn commits what is offered, the ratio is bounded by the offered load, not by the store: raise --rate (or --slots/--agents) to find the ceiling',
    ],
    figures: { ...figures, cpu: undefined, ceiling: base.ceiling, floor: base.floor, ratio },
    disturbed,
    foreignPct,
  });
}
