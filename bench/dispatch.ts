/**
 * Dispatch benchmark: how many no-op backup tasks per second go through the whole real path
 * (HTTP create → store → dispatcher → WebSocket → agent → spool → result → store), compared
 * with a bare-WebSocket baseline measured in the same run on the same machine (baseline.ts).
 * The figure worth reading is the ratio real/baseline; absolute numbers only describe this
 * machine on this day. See docs/performance.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import * as prettier from 'prettier';
import { runBaseline, type BaselineRun } from './baseline.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';
import { Api } from '@cairn/test-harness/api';
import { freshDatabase, type Backend } from '@cairn/test-harness/databases';
import { enrollAgent, startAgent, startControlPlane, type Proc } from '@cairn/test-harness/processes';
import { waitFor } from '@cairn/test-harness/wait';

export interface DispatchOptions {
  tasks: number;
  agents: number;
  /** Stores asked for on the command line; undefined = SQLite, plus MariaDB/MySQL if one answers. */
  stores: Backend[] | undefined;
}

/** Slots per agent: what a small production agent would advertise. */
const SLOTS = 8;
/** HTTP creates in flight: enough to keep the queue ahead of 4×8 slots without flooding the API. */
const CREATE_CONCURRENCY = 32;
/** Only one task per instance runs at a time, so tasks are spread over this many instances. */
const INSTANCES = 200;
const ZONE = 'bench';
/** How often the bench asks whether work is left; a few cheap list calls, not part of the load. */
const POLL_MS = 250;
const BASELINE_RUNS = 3;
/**
 * Above this share of the machine used by processes outside the bench, a run's figures say more
 * about the neighbours than about Cairn; they are still printed, flagged.
 */
const FOREIGN_LIMIT_PCT = 5;

/**
 * Production defaults (the harness shortens them for tests); set explicitly so the bench
 * measures what an operator would run, and a change of defaults does not move the figures silently.
 */
const CONTROL_PLANE_ENV = {
  CAIRN_HEARTBEAT_MS: '5000',
  CAIRN_TASK_LEASE_MS: '60000',
  CAIRN_DISPATCH_POLL_MS: '1000',
  CAIRN_MAX_CONCURRENT_TASKS: '1000',
  // Info, not warn: the harness finds the port in the "listening" line. Its output is kept in
  // memory (for diagnostics on failure), never printed.
  CAIRN_LOG_LEVEL: 'info',
};

interface TaskView {
  id: string;
  state: string;
  attempt: number;
  error: { code: string; message: string } | null;
  createdAt: string;
  dispatchedAt: string | null;
  endedAt: string | null;
}

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

interface RealRun {
  /** From the first create request to the last `endedAt` stored. */
  elapsedMs: number;
  /** Per task, endedAt − createdAt: queueing included. */
  latenciesMs: number[];
  /** Per task, endedAt − dispatchedAt: the part comparable to the baseline's assign → result. */
  inFlightMs: number[];
  /** Tasks that needed more than one attempt (should be 0: nothing is killed in this bench). */
  retried: number;
  /** From the first create request to the last 202. */
  createMs: number;
  /** Where the time went, measured over the timed part (Linux only). */
  cpu: CpuUse | null;
  /** Log lines at warn or above (and stderr lines), per process: a clean run has none. */
  warnings: Record<string, number>;
}

export interface Figures {
  tasksPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface StoreResult {
  store: Backend;
  /** Server version, and the settings that decide how often it syncs to disk. */
  storeVersion: string;
  durability: string;
  real: Figures &
    Pick<RealRun, 'elapsedMs' | 'createMs' | 'retried' | 'cpu' | 'warnings'> & {
      inFlightP50Ms: number;
      inFlightP99Ms: number;
    };
  baseline: Figures & {
    elapsedMs: number;
    runsTasksPerSec: number[];
    /** Highest share of the machine taken by foreign processes in any baseline run. */
    foreignPct: number | null;
  };
  /** Set when foreign load took more than FOREIGN_LIMIT_PCT of the machine during a timed part. */
  disturbed: boolean;
  /** real tasks/s ÷ baseline tasks/s. */
  ratio: number;
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const figures = (tasks: number, elapsedMs: number, latencies: number[]): Figures => ({
  tasksPerSec: (tasks * 1000) / elapsedMs,
  p50Ms: percentile(latencies, 50),
  p99Ms: percentile(latencies, 99),
});

/** Runs `fn(0..n-1)` with at most `limit` calls in flight; the first failure stops handing out work. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < n) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/**
 * MariaDB/MySQL is benchmarked when CAIRN_TEST_MYSQL_URL is set (then it must answer) or when a
 * server answers on 127.0.0.1:3306 as root. Returns its version, or why it is skipped.
 */
export async function findMysql(
  required: boolean,
): Promise<{ version: string; durability: string } | { skipped: string }> {
  const explicit = process.env['CAIRN_TEST_MYSQL_URL'];
  const url = explicit ?? 'mysql://root@127.0.0.1:3306';
  let conn;
  try {
    conn = await createConnection({ uri: url, connectTimeout: 2000 });
  } catch (err) {
    const why = `no MySQL/MariaDB answered at ${url} (${(err as Error).message})`;
    if (explicit || required) throw new Error(why);
    return { skipped: why };
  }
  try {
    const [rows] = await conn.query(
      'SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f, @@sync_binlog AS s, @@log_bin AS b',
    );
    const row = (rows as { v: string; f: number; s: number; b: number }[])[0]!;
    // freshDatabase() reads the server from this variable.
    process.env['CAIRN_TEST_MYSQL_URL'] = url;
    return {
      version: row.v,
      durability: `innodb_flush_log_at_trx_commit=${row.f}, log_bin=${row.b}, sync_binlog=${row.s}`,
    };
  } finally {
    await conn.end();
  }
}

/** Lines at pino level warn (40) or above, plus anything on stderr. */
function warningCount(p: Proc): number {
  return p.logs().filter((l) => typeof l['level'] === 'number' && l['level'] >= 40).length + p.stderr.length;
}

/** The last lines of every process, for a failure message that can be acted on. */
function diagnostics(procs: [string, Proc][]): string {
  return procs
    .map(([name, p]) => {
      const state = p.running ? 'running' : `exited code=${p.exitCode} signal=${p.signal}`;
      return (
        `--- ${name} (${state}), last stdout lines:\n${p.lines.slice(-15).join('\n')}\n` +
        `--- ${name} stderr:\n${p.stderr.slice(-15).join('\n')}`
      );
    })
    .join('\n');
}

async function allTasks(api: Api): Promise<TaskView[]> {
  const out: TaskView[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: Page<TaskView> = await api.expect(200, 'GET', `/v1/tasks?limit=500${q}`);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/**
 * Up to `limit` tasks in a state. Polls ask for very few: serialising hundreds of rows four
 * times a second would be load the bench adds to the control plane it measures.
 */
async function inState(api: Api, state: string, limit: number): Promise<TaskView[]> {
  return (await api.expect<Page<TaskView>>(200, 'GET', `/v1/tasks?state=${state}&limit=${limit}`)).items;
}

/** Polls until nothing is queued or held; any failed, lost or cancelled task ends the run at once. */
async function waitUntilDrained(api: Api, procs: [string, Proc][], deadline: number): Promise<void> {
  for (;;) {
    for (const [name, p] of procs) if (!p.running) throw new Error(`${name} exited during the run`);
    for (const state of ['failed', 'lost', 'cancelled']) {
      const bad = await inState(api, state, 3);
      if (bad.length > 0) throw new Error(`task(s) ${state}, e.g. ${JSON.stringify(bad, null, 1)}`);
    }
    let busy = false;
    for (const state of ['queued', 'dispatched', 'running']) busy ||= (await inState(api, state, 1)).length > 0;
    if (!busy) return;
    if (Date.now() > deadline) {
      const left: Record<string, number> = {};
      for (const state of ['queued', 'dispatched', 'running']) left[state] = (await inState(api, state, 500)).length;
      const stuck = await inState(api, 'dispatched', 3);
      throw new Error(
        `stalled: tasks still ${JSON.stringify(left)} (500 means 500 or more), e.g. ${JSON.stringify(stuck, null, 1)}`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Cleanups of runs in progress, for an interrupted bench (see `interrupted`). */
const inProgress = new Set<() => Promise<void>>();

/** Stops the children and drops the database of a run cut short by Ctrl-C or SIGTERM. */
export async function interrupted(): Promise<void> {
  await Promise.allSettled([...inProgress].map((cleanup) => cleanup()));
}

async function runReal(store: Backend, opts: DispatchOptions): Promise<RealRun> {
  const db = await freshDatabase(store);
  const procs: [string, Proc][] = [];
  const stateDirs: string[] = [];
  // Once only: a signal and the normal end of the run may both ask for it.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      // Agents first, so none of them logs a lost control plane on the way out.
      for (const [, p] of [...procs].reverse()) await p.stop();
      await db.drop();
      for (const d of stateDirs) fs.rmSync(d, { recursive: true, force: true });
      inProgress.delete(cleanup);
    })());
  inProgress.add(cleanup);
  try {
    const cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, env: CONTROL_PLANE_ENV });
    procs.push(['control plane', cp.proc]);
    const api = new Api(cp.url, cp.adminToken);

    // Setup, not timed: one dummy provider that finishes at once, one offering, the instances.
    const provider = await api.expect(201, 'POST', `/v1/zones/${ZONE}/providers`, {
      name: 'bench-dummy',
      plugin: '@cairn/plugin-dummy',
      config: { durationMs: 0, steps: 1, sizeBytes: 1 },
    });
    const offering = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'bench',
      zone: ZONE,
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    const instanceIds: string[] = [];
    await pool(Math.min(INSTANCES, opts.tasks), 8, async (i) => {
      const inst = await api.expect(201, 'POST', '/v1/instances', { name: `bench-${i}`, zone: ZONE, locator: {} });
      await api.expect(200, 'PUT', `/v1/instances/${inst.id}/offering`, { offeringId: offering.id });
      instanceIds[i] = inst.id as string;
    });
    for (let i = 0; i < opts.agents; i++) {
      const { stateDir } = await enrollAgent(cp, ZONE, `bench-agent-${i}`);
      stateDirs.push(stateDir);
      procs.push([`agent ${i}`, await startAgent(stateDir, { slots: SLOTS })]);
    }
    // The agent logs "connected" on welcome; the dispatcher counts it only once the hello is stored.
    await waitFor(async () => {
      const agents = await api.expect<Page<{ state: string }>>(200, 'GET', '/v1/agents');
      return agents.items.filter((a) => a.state === 'connected').length === opts.agents;
    }, `${opts.agents} agents to show as connected`);

    log(`${store}: creating ${opts.tasks} backup tasks over ${instanceIds.length} instances`);
    const created: string[] = [];
    const cpu = cpuWindow({
      'control plane': [cp.proc.child.pid],
      agents: procs.slice(1).map(([, p]) => p.child.pid),
      bench: [process.pid],
      ...(store === 'mysql' ? { 'database server': pidsNamed('mariadbd', 'mysqld') } : {}),
    });
    const t0 = Date.now();
    await pool(opts.tasks, CREATE_CONCURRENCY, async (i) => {
      const task = await api.expect<TaskView>(
        202,
        'POST',
        `/v1/instances/${instanceIds[i % instanceIds.length]}/backups`,
      );
      created[i] = task.id;
    });
    const createMs = Date.now() - t0;
    await waitUntilDrained(api, procs, Date.now() + 60_000 + opts.tasks * 50);
    // Includes up to one poll interval after the last task ended: good enough for shares of CPU.
    const cpuUse = cpu();

    // Every task we created must be there and have succeeded; anything else fails the run.
    const byId = new Map((await allTasks(api)).map((t) => [t.id, t]));
    const wrong: string[] = [];
    const latenciesMs: number[] = [];
    const inFlightMs: number[] = [];
    let lastEnd = 0;
    let retried = 0;
    for (const id of created) {
      const t = byId.get(id);
      if (!t || t.state !== 'succeeded' || !t.endedAt || !t.dispatchedAt) {
        wrong.push(t ? `${id}: ${t.state} ${JSON.stringify(t.error)}` : `${id}: missing`);
        continue;
      }
      const ended = Date.parse(t.endedAt);
      latenciesMs.push(ended - Date.parse(t.createdAt));
      inFlightMs.push(ended - Date.parse(t.dispatchedAt));
      lastEnd = Math.max(lastEnd, ended);
      if (t.attempt > 1) retried++;
    }
    if (created.length !== opts.tasks || wrong.length > 0)
      throw new Error(
        `${wrong.length} of ${opts.tasks} tasks did not succeed (created ${created.length}):\n  ${wrong.slice(0, 10).join('\n  ')}`,
      );
    return {
      elapsedMs: lastEnd - t0,
      latenciesMs,
      inFlightMs,
      retried,
      createMs,
      cpu: cpuUse,
      warnings: Object.fromEntries(procs.map(([name, p]) => [name, warningCount(p)])),
    };
  } catch (err) {
    throw new Error(`real path on ${store} failed: ${(err as Error).message}\n${diagnostics(procs)}`, { cause: err });
  } finally {
    await cleanup();
  }
}

/**
 * A baseline run lasts well under a second, so JIT warm-up and scheduling noise move it far more
 * than the real run: take the median of a few.
 */
async function medianBaseline(
  opts: DispatchOptions,
): Promise<BaselineRun & { runsTasksPerSec: number[]; foreignPct: number | null }> {
  const runs: BaselineRun[] = [];
  for (let i = 0; i < BASELINE_RUNS; i++)
    runs.push(await runBaseline({ tasks: opts.tasks, agents: opts.agents, slots: SLOTS, timeoutMs: 120_000 }));
  const runsTasksPerSec = runs.map((r) => (opts.tasks * 1000) / r.elapsedMs);
  const median = [...runs].sort((a, b) => a.elapsedMs - b.elapsedMs)[Math.floor(runs.length / 2)]!;
  const foreign = runs.map((r) => r.cpu?.foreignPct).filter((x) => x !== undefined);
  return { ...median, runsTasksPerSec, foreignPct: foreign.length > 0 ? Math.max(...foreign) : null };
}

function storeResult(
  store: { store: Backend; version: string; durability: string },
  tasks: number,
  real: RealRun,
  base: BaselineRun & { runsTasksPerSec: number[]; foreignPct: number | null },
): StoreResult {
  const r = figures(tasks, real.elapsedMs, real.latenciesMs);
  const b = figures(tasks, base.elapsedMs, base.latenciesMs);
  return {
    store: store.store,
    storeVersion: store.version,
    durability: store.durability,
    real: {
      ...r,
      elapsedMs: real.elapsedMs,
      inFlightP50Ms: percentile(real.inFlightMs, 50),
      inFlightP99Ms: percentile(real.inFlightMs, 99),
      retried: real.retried,
      createMs: real.createMs,
      cpu: real.cpu,
      warnings: real.warnings,
    },
    baseline: { ...b, elapsedMs: base.elapsedMs, runsTasksPerSec: base.runsTasksPerSec, foreignPct: base.foreignPct },
    ratio: r.tasksPerSec / b.tasksPerSec,
    disturbed: Math.max(real.cpu?.foreignPct ?? 0, base.foreignPct ?? 0) > FOREIGN_LIMIT_PCT,
  };
}

function table(results: StoreResult[]): string {
  const head = [
    'store',
    'real t/s',
    'base t/s',
    'real/base',
    'real p50',
    'real p99',
    'base p50',
    'base p99',
    'real in-flight p50/p99',
  ];
  const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
  const rows = results.map((x) => [
    x.store,
    x.real.tasksPerSec.toFixed(0),
    x.baseline.tasksPerSec.toFixed(0),
    `${(x.ratio * 100).toFixed(1)} %`,
    ms(x.real.p50Ms),
    ms(x.real.p99Ms),
    ms(x.baseline.p50Ms),
    ms(x.baseline.p99Ms),
    `${ms(x.real.inFlightP50Ms)} / ${ms(x.real.inFlightP99Ms)}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export async function runDispatchBench(opts: DispatchOptions): Promise<void> {
  const startedAt = new Date();
  const stores: { store: Backend; version: string; durability: string }[] = [];
  const skipped: string[] = [];
  if (!opts.stores || opts.stores.includes('sqlite'))
    stores.push({ store: 'sqlite', version: 'better-sqlite3', durability: 'journal_mode=WAL, synchronous=NORMAL' });
  if (!opts.stores || opts.stores.includes('mysql')) {
    const mysql = await findMysql(opts.stores !== undefined);
    if ('skipped' in mysql) skipped.push(`mysql: ${mysql.skipped}`);
    else stores.push({ store: 'mysql', version: mysql.version, durability: mysql.durability });
  }
  for (const s of skipped) log(`skipped ${s}`);

  const results: StoreResult[] = [];
  for (const s of stores) {
    const store = s.store;
    // The baseline runs next to each real run, so both see the machine in the same state.
    log(
      `${store}: baseline (median of ${BASELINE_RUNS}), ${opts.tasks} tasks, ${opts.agents} bare clients × ${SLOTS} slots`,
    );
    const base = await medianBaseline(opts);
    log(`${store}: real path, ${opts.agents} agents × ${SLOTS} slots`);
    const real = await runReal(store, opts);
    results.push(storeResult(s, opts.tasks, real, base));
  }

  process.stdout.write(
    `\ndispatch: ${opts.tasks} no-op backup tasks, ${opts.agents} agents × ${SLOTS} slots, ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}\n\n` +
      `${table(results)}\n\n` +
      'real p50/p99: endedAt − createdAt (queueing included); base p50/p99: assign sent → result received;\n' +
      'real in-flight: endedAt − dispatchedAt, the interval that matches the baseline’s.\n',
  );
  for (const r of results) {
    const c = r.real.cpu;
    const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    process.stdout.write(`${r.store}: tasks created in ${sec(r.real.createMs)} of ${sec(r.real.elapsedMs)}`);
    if (c) {
      const by = Object.entries(c.byGroup).map(([name, v]) => `${name} ${(v.userSec + v.systemSec).toFixed(1)}`);
      process.stdout.write(
        `; CPU s: ${by.join(', ')}, kernel ${c.kernelSec.toFixed(1)}, foreign ${c.foreignSec.toFixed(1)}; ` +
          `machine ${c.machineBusyPct.toFixed(0)} % busy`,
      );
    }
    process.stdout.write('\n');
    if (r.disturbed)
      process.stdout.write(
        `WARNING: ${r.store}: processes outside the bench used ${(c?.foreignPct ?? 0).toFixed(0)} % (real) / ` +
          `${(r.baseline.foreignPct ?? 0).toFixed(0)} % (baseline) of the machine: these figures are not trustworthy; ` +
          'run again on an idle machine\n',
      );
    if (r.real.retried > 0)
      process.stdout.write(`note: ${r.real.retried} task(s) on ${r.store} needed a second attempt\n`);
    const noisy = Object.entries(r.real.warnings).filter(([, n]) => n > 0);
    if (noisy.length > 0)
      process.stdout.write(`note: warnings on ${r.store}: ${noisy.map(([p, n]) => `${p}: ${n}`).join(', ')}\n`);
  }

  const date = startedAt.toISOString().slice(0, 10);
  const file = fileURLToPath(new URL(`./results/dispatch-${date}.json`, import.meta.url));
  fs.mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const json = {
    benchmark: 'dispatch',
    startedAt: startedAt.toISOString(),
    options: {
      tasks: opts.tasks,
      agents: opts.agents,
      slots: SLOTS,
      createConcurrency: CREATE_CONCURRENCY,
      instances: Math.min(INSTANCES, opts.tasks),
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
    },
    controlPlaneEnv: CONTROL_PLANE_ENV,
    stores: results,
    skipped,
  };
  // Three decimals are more than these measurements can tell apart.
  const round = (_: string, v: unknown) =>
    typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v;
  // Formatted as `prettier --check .` (part of `pnpm lint`) expects, so a committed result passes.
  const options = (await prettier.resolveConfig(file)) ?? {};
  fs.writeFileSync(file, await prettier.format(JSON.stringify(json, round), { ...options, parser: 'json' }));
  process.stdout.write(`\nwritten: ${file}\n`);
}
