/**
 * B1 dispatch: how many no-op backup tasks per second go through the whole real path
 * (HTTP create → store → dispatcher → WebSocket → agent → spool → result → store), against two
 * baselines in the same run on the same machine: the same frames over bare WebSockets
 * (baseline.ts, three runs: the A/A band) and BullMQ on a local Redis (bullmq.ts, two runs).
 * The ratios are the figures worth reading. Options: `--open-loop` (tasks created at half the
 * measured rate: p99 dispatched → accepted), `--strace` (the agents' fsyncs per task),
 * `--cpu-prof` (profiles of the control plane and the agents). See docs/performance.md.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runBaseline, type BaselineRun } from './baseline.js';
import { runBullmq, type BullRun } from './bullmq.js';
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
  type StoreChoice,
} from './common.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';
import { Api } from '@cairn/test-harness/api';
import type { Backend } from '@cairn/test-harness/databases';
import type { PluginIsolation } from '@cairn/plugin-sdk/host';
import { tempDir, type Proc } from '@cairn/test-harness/processes';

export interface DispatchOptions {
  tasks: number;
  agents: number;
  /** Stores asked for on the command line; undefined = SQLite, plus MariaDB/MySQL if one answers. */
  stores: Backend[] | undefined;
  /** Also measure dispatched → accepted at half the measured rate. */
  openLoop: boolean;
  /** Run the agents under `strace -c` and count their fsyncs. */
  strace: boolean;
  /**
   * Control-plane replica counts to run the real path on, one after another (MariaDB/MySQL
   * only), instead of the baselines: see runReplicasBench. Undefined: one control plane.
   */
  replicas?: number[];
  /**
   * How the agents host the plugin (their `--plugin-isolation`): `worker`, each task on a worker
   * thread of its own (the default, what a service runs), or `inline`, on the agent's own thread
   * (what the thread hop costs).
   */
  pluginIsolation: PluginIsolation;
}

/** Slots per agent: what a small production agent would advertise. */
const SLOTS = 8;
/** HTTP creates in flight: enough to keep the queue ahead of 4×8 slots without flooding the API. */
const CREATE_CONCURRENCY = 32;
/** Only one task per instance runs at a time, so tasks are spread over this many instances. */
const INSTANCES = 200;
/** Warm-up tasks before the timed run, per agent slot. */
const WARMUP_PER_SLOT = 4;
/** How often the bench asks whether work is left; a few cheap list calls, not part of the load. */
const POLL_MS = 250;
const BASELINE_RUNS = 3;
const BULLMQ_RUNS = 2;
/** The open-loop phase lasts about this long at half the measured rate. */
const OPEN_LOOP_S = 20;

interface TaskView {
  id: string;
  state: string;
  attempt: number;
  error: { code: string; message: string } | null;
  createdAt: string;
  dispatchedAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
}

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

interface Figures {
  tasksPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

interface RealRun extends Figures {
  /** Control-plane processes on the one database. */
  replicas: number;
  /** From the first create request to the last `endedAt` stored. */
  elapsedMs: number;
  /** endedAt − dispatchedAt: the part comparable to the bare baseline's assign → result. */
  inFlightP50Ms: number;
  inFlightP99Ms: number;
  /** Tasks that needed more than one attempt (should be 0: nothing is killed in this bench). */
  retried: number;
  /** From the first create request to the last 202. */
  createMs: number;
  /** Where the time went, measured over the timed part (Linux only). */
  cpu: CpuUse | null;
  /** Log lines at warn or above (and stderr lines), per process: a clean run has none. */
  warnings: Record<string, number>;
  openLoop: OpenLoop | null;
  /** fsync + fdatasync calls of every agent process (strace -c -f), per task they ran. */
  fsyncs: { calls: number; perTask: number } | null;
  /** Store statements per timed task, by verb, and the store's time per task, in all and by verb (the control planes' metrics). */
  statements: { perTask: Record<string, number>; msPerTask: number; msPerTaskByVerb: Record<string, number> };
}

/** Store statements the control planes at `urls` ran so far (their /metrics), by verb: count and seconds. */
async function storeStatements(urls: string[]): Promise<Map<string, { n: number; s: number }>> {
  const out = new Map<string, { n: number; s: number }>();
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const m of text.matchAll(/^cairn_store_statement(s|_seconds)_total\{verb="(\w+)"\} ([\d.e+-]+)$/gm)) {
      const e = out.get(m[2]!) ?? { n: 0, s: 0 };
      if (m[1] === 's') e.n += Number(m[3]);
      else e.s += Number(m[3]);
      out.set(m[2]!, e);
    }
  }
  return out;
}

/** What the store ran between two readings of {@link storeStatements}, per task. */
function statementsPerTask(
  before: Map<string, { n: number; s: number }>,
  after: Map<string, { n: number; s: number }>,
  tasks: number,
): RealRun['statements'] {
  const perTask: Record<string, number> = {};
  const msPerTaskByVerb: Record<string, number> = {};
  let seconds = 0;
  for (const [verb, a] of after) {
    const b = before.get(verb) ?? { n: 0, s: 0 };
    perTask[verb] = (a.n - b.n) / tasks;
    msPerTaskByVerb[verb] = ((a.s - b.s) * 1000) / tasks;
    seconds += a.s - b.s;
  }
  return { perTask, msPerTask: (seconds * 1000) / tasks, msPerTaskByVerb };
}

interface OpenLoop {
  ratePerSec: number;
  tasks: number;
  /** Achieved: tasks ÷ (last create sent − first). */
  achievedPerSec: number;
  /** startedAt (the agent's accepted, as stored) − dispatchedAt, per task. */
  dispatchToAcceptedP50Ms: number;
  dispatchToAcceptedP99Ms: number;
  endToEndP99Ms: number;
  cpu: CpuUse | null;
}

const figures = (tasks: number, elapsedMs: number, latencies: number[]): Figures => ({
  tasksPerSec: (tasks * 1000) / elapsedMs,
  p50Ms: percentile(latencies, 50),
  p99Ms: percentile(latencies, 99),
});

/** Lines at pino level warn (40) or above, plus anything on stderr. */
function warningCount(p: Proc): number {
  return p.logs().filter((l) => typeof l['level'] === 'number' && l['level'] >= 40).length + p.stderr.length;
}

/** Every item of a paged list (`/v1/tasks`, `/v1/backups`), 500 a page. */
async function allItems<T>(api: Api, list: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: Page<T> = await api.expect(200, 'GET', `${list}?limit=500${q}`);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

const allTasks = (api: Api) => allItems<TaskView>(api, '/v1/tasks');

/**
 * Up to `limit` tasks in a state. Polls ask for very few: serialising hundreds of rows four
 * times a second would be load the bench adds to the control plane it measures. A filtered page
 * reads a bounded stretch of the list and may come back short, or empty, with a cursor: the
 * pages are followed until `limit` are found or the list ends.
 */
async function inState(api: Api, state: string, limit: number): Promise<TaskView[]> {
  const found: TaskView[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: Page<TaskView> = await api.expect(200, 'GET', `/v1/tasks?state=${state}&limit=${limit}${q}`);
    found.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && found.length < limit);
  return found.slice(0, limit);
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

/** The pids a process started (strace's tracee), from /proc; [] when none or off Linux. */
function childPids(pid: number | undefined): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** How many threads a process runs (its plugin workers among them), from /proc; '?' off Linux. */
function threadCount(pid: number | undefined): string {
  try {
    return /^Threads:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** Sum of the `calls` column of the fsync and fdatasync rows of `strace -c` summaries. */
function fsyncCalls(files: string[]): number {
  let calls = 0;
  for (const f of files)
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols.at(-1) === 'fsync' || cols.at(-1) === 'fdatasync') calls += Number(cols[3]);
    }
  return calls;
}

/**
 * Creates `n` backup tasks over the instances: as fast as CREATE_CONCURRENCY allows, or at
 * `perSec` (open loop: each create starts on its schedule, whether or not earlier ones answered).
 */
async function createTasks(apis: Api[], instanceIds: string[], n: number, perSec?: number) {
  const ids: string[] = [];
  // Round-robin over the replicas, as a load balancer would spread them.
  const create = async (i: number) => {
    const task = await apis[i % apis.length]!.expect<TaskView>(
      202,
      'POST',
      `/v1/instances/${instanceIds[i % instanceIds.length]}/backups`,
    );
    ids[i] = task.id;
  };
  const t0 = Date.now();
  if (perSec === undefined) await pool(n, CREATE_CONCURRENCY, create);
  else {
    const pending: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / perSec - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(create(i));
    }
    await Promise.all(pending);
  }
  return { ids, t0, createMs: Date.now() - t0 };
}

/** Every created task must exist, have succeeded, with its times; anything else fails the run. */
async function succeeded(api: Api, created: string[], n: number): Promise<TaskView[]> {
  const byId = new Map((await allTasks(api)).map((t) => [t.id, t]));
  const out: TaskView[] = [];
  const wrong: string[] = [];
  for (const id of created) {
    const t = byId.get(id);
    if (!t || t.state !== 'succeeded' || !t.endedAt || !t.dispatchedAt || !t.startedAt)
      wrong.push(t ? `${id}: ${t.state} ${JSON.stringify(t.error)}` : `${id}: missing`);
    else out.push(t);
  }
  if (created.length !== n || wrong.length > 0)
    throw new Error(
      `${wrong.length} of ${n} tasks did not succeed (created ${created.length}):\n  ${wrong.slice(0, 10).join('\n  ')}`,
    );
  return out;
}

/**
 * Exactly once, over the whole run: the store holds as many tasks as were created (none
 * doubled, none from nowhere) and one backup record for each (none lost, none twice).
 */
async function exactlyOnce(api: Api, created: string[]): Promise<void> {
  const tasks = await allTasks(api);
  const records = new Map<string, number>();
  for (const b of await allItems<{ taskId: string }>(api, '/v1/backups'))
    records.set(b.taskId, (records.get(b.taskId) ?? 0) + 1);
  const total = [...records.values()].reduce((a, b) => a + b, 0);
  const off = created.filter((id) => records.get(id) !== 1);
  if (tasks.length !== created.length || total !== created.length || off.length > 0)
    throw new Error(
      `not exactly once: ${created.length} tasks created, ${tasks.length} stored, ${total} backup records; ` +
        `tasks without exactly one record: ${off.length}` +
        (off.length > 0 ? `, e.g. ${off.slice(0, 5).map((id) => `${id}: ${records.get(id) ?? 0}`)}` : ''),
    );
}

const ms = (a: string, b: string) => Date.parse(b) - Date.parse(a);

async function runReal(store: Backend, opts: DispatchOptions, replicas = 1): Promise<RealRun> {
  if (opts.strace && spawnSync('strace', ['-V']).error)
    throw new Error('--strace: no strace on this machine (apt-get install strace)');
  const stack = await startStack(store, { replicas });
  const { api, procs } = stack;
  const apis = stack.replicas.map((cp) => new Api(cp.url, cp.adminToken));
  const straceDir = opts.strace ? tempDir('bench-strace') : undefined;
  const straceFiles: string[] = [];
  try {
    const instanceIds = await dummyInstances(api, Math.min(INSTANCES, opts.tasks), {
      durationMs: 0,
      steps: 1,
      sizeBytes: 1,
    });
    const agents = await startAgents(stack, opts.agents, {
      slots: SLOTS,
      ...(opts.pluginIsolation === 'worker' ? {} : { args: ['--plugin-isolation', opts.pluginIsolation] }),
      ...(straceDir
        ? {
            wrapper: (i: number) => {
              straceFiles.push(path.join(straceDir, `agent-${i}.txt`));
              return ['strace', '-f', '-c', '-e', 'trace=fsync,fdatasync', '-o', straceFiles.at(-1)!];
            },
          }
        : {}),
    });
    // Under strace the agent process is strace's child: the CPU is counted where the work is.
    const agentPids = agents.map((p) => (straceDir ? childPids(p.child.pid)[0] : p.child.pid));
    const window = () =>
      cpuWindow({
        'control plane': stack.replicas.map((cp) => cp.proc.child.pid),
        agents: agentPids,
        bench: [process.pid],
        ...(store === 'mysql' ? { 'database server': pidsNamed('mariadbd', 'mysqld') } : {}),
      });

    // Untimed warm-up: every agent's plugin worker threads started (an agent keeps them warm for
    // good: starting one costs more than many no-op tasks) and the processes' code compiled, as
    // on agents and a control plane that have run for a while.
    const warmupTasks = opts.agents * SLOTS * WARMUP_PER_SLOT;
    log(`${store}: warm-up, ${warmupTasks} tasks (not timed)`);
    const warm = await createTasks(apis, instanceIds, warmupTasks);
    await waitUntilDrained(api, procs, Date.now() + 60_000 + warmupTasks * 50);
    await succeeded(api, warm.ids, warmupTasks);
    log(`${store}: warmed up; threads per agent process: ${agentPids.map(threadCount).join(', ')}`);

    log(
      `${store}: creating ${opts.tasks} backup tasks over ${instanceIds.length} instances` +
        (replicas > 1 ? `, through ${replicas} replicas` : ''),
    );
    const urls = stack.replicas.map((cp) => cp.url);
    const statementsBefore = await storeStatements(urls);
    const cpu = window();
    const closed = await createTasks(apis, instanceIds, opts.tasks);
    await waitUntilDrained(api, procs, Date.now() + 60_000 + opts.tasks * 50);
    // Includes up to one poll interval after the last task ended: good enough for shares of CPU.
    const cpuUse = cpu();
    // The bench's own polls while it waited are in it too (a few dozen reads in all).
    const statements = statementsPerTask(statementsBefore, await storeStatements(urls), opts.tasks);
    const done = await succeeded(api, closed.ids, opts.tasks);
    const lastEnd = Math.max(...done.map((t) => Date.parse(t.endedAt!)));
    const elapsedMs = lastEnd - closed.t0;
    const inFlight = done.map((t) => ms(t.dispatchedAt!, t.endedAt!));
    let ran = warmupTasks + opts.tasks;
    /** Every task the run created, for the exactly-once check at its end. */
    const created = [...warm.ids, ...closed.ids];

    let openLoop: OpenLoop | null = null;
    if (opts.openLoop) {
      const ratePerSec = (opts.tasks * 1000) / elapsedMs / 2;
      const n = Math.max(10, Math.round(ratePerSec * OPEN_LOOP_S));
      log(`${store}: open loop, ${n} tasks at ${ratePerSec.toFixed(1)}/s (half the measured rate)`);
      const cpuOpen = window();
      const open = await createTasks(apis, instanceIds, n, ratePerSec);
      await waitUntilDrained(api, procs, Date.now() + 60_000 + n * 50);
      const use = cpuOpen();
      const tasks = await succeeded(api, open.ids, n);
      const toAccepted = tasks.map((t) => ms(t.dispatchedAt!, t.startedAt!));
      openLoop = {
        ratePerSec,
        tasks: n,
        achievedPerSec: (n * 1000) / Math.max(1, open.createMs),
        dispatchToAcceptedP50Ms: percentile(toAccepted, 50),
        dispatchToAcceptedP99Ms: percentile(toAccepted, 99),
        endToEndP99Ms: percentile(
          tasks.map((t) => ms(t.createdAt, t.endedAt!)),
          99,
        ),
        cpu: use,
      };
      ran += n;
      created.push(...open.ids);
    }
    await exactlyOnce(api, created);

    const warnings = Object.fromEntries(procs.map(([name, p]) => [name, warningCount(p)]));
    let fsyncs: RealRun['fsyncs'] = null;
    if (straceDir) {
      // strace blocks fatal signals while it traces a command it started: stop the agent itself.
      for (const pid of agentPids) if (pid !== undefined) process.kill(pid, 'SIGTERM');
      await Promise.all(agents.map((p) => p.exit()));
      const calls = fsyncCalls(straceFiles);
      fsyncs = { calls, perTask: calls / ran };
    }
    return {
      replicas,
      ...figures(
        opts.tasks,
        elapsedMs,
        done.map((t) => ms(t.createdAt, t.endedAt!)),
      ),
      elapsedMs,
      inFlightP50Ms: percentile(inFlight, 50),
      inFlightP99Ms: percentile(inFlight, 99),
      retried: done.filter((t) => t.attempt > 1).length,
      createMs: closed.createMs,
      cpu: cpuUse,
      warnings,
      openLoop,
      fsyncs,
      statements,
    };
  } catch (err) {
    const where = replicas > 1 ? `${store}, ${replicas} replicas` : store;
    throw new Error(`real path on ${where} failed: ${(err as Error).message}\n${diagnostics(procs)}`, { cause: err });
  } finally {
    await stack.cleanup();
    if (straceDir) fs.rmSync(straceDir, { recursive: true, force: true });
  }
}

async function baselines(opts: DispatchOptions): Promise<{ bare: BaselineRun[]; bull: BullRun[] }> {
  log(
    `baseline: bare WebSocket ×${BASELINE_RUNS}, BullMQ ×${BULLMQ_RUNS}; ${opts.tasks} tasks, ${opts.agents} × ${SLOTS} slots`,
  );
  const bare: BaselineRun[] = [];
  for (let i = 0; i < BASELINE_RUNS; i++)
    bare.push(await runBaseline({ tasks: opts.tasks, agents: opts.agents, slots: SLOTS, timeoutMs: 120_000 }));
  const bull: BullRun[] = [];
  for (let i = 0; i < BULLMQ_RUNS; i++)
    bull.push(await runBullmq({ tasks: opts.tasks, agents: opts.agents, slots: SLOTS }));
  return { bare, bull };
}

interface StoreResult {
  store: StoreChoice;
  real: RealRun;
  bare: Band & { p50Ms: number; p99Ms: number };
  bullmq: Band & { p50Ms: number; p99Ms: number };
  ratioBare: number;
  ratioBullmq: number;
}

/** The A/A band of tasks/s over the runs, and the latencies of the median run. */
function baselineBand(tasks: number, runs: { elapsedMs: number; latenciesMs: number[] }[]) {
  const b = band(runs.map((r) => (tasks * 1000) / r.elapsedMs));
  const median = [...runs].sort((x, y) => x.elapsedMs - y.elapsedMs)[Math.floor(runs.length / 2)]!;
  return { ...b, p50Ms: percentile(median.latenciesMs, 50), p99Ms: percentile(median.latenciesMs, 99) };
}

export async function runDispatchBench(opts: DispatchOptions): Promise<void> {
  if (opts.replicas) return runReplicasBench({ ...opts, replicas: opts.replicas });
  const startedAt = new Date();
  const stores = await chooseStores(opts.stores);
  const results: StoreResult[] = [];
  const windows: (CpuUse | null)[] = [];
  for (const s of stores) {
    // The baselines run next to each real run, so both see the machine in the same state.
    const { bare, bull } = await baselines(opts);
    log(`${s.store}: real path, ${opts.agents} agents × ${SLOTS} slots`);
    const real = await runReal(s.store, opts);
    const bareBand = baselineBand(opts.tasks, bare);
    const bullBand = baselineBand(opts.tasks, bull);
    windows.push(...bare.map((r) => r.cpu), ...bull.map((r) => r.cpu), real.cpu, real.openLoop?.cpu ?? null);
    results.push({
      store: s,
      real,
      bare: bareBand,
      bullmq: bullBand,
      ratioBare: real.tasksPerSec / bareBand.median,
      ratioBullmq: real.tasksPerSec / bullBand.median,
    });
  }
  const { foreignPct, disturbed } = disturbance(windows);
  const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  const notes = [
    'real p50/p99: endedAt − createdAt (queueing included); in-flight: endedAt − dispatchedAt (comparable to the bare baseline’s assign sent → result received)',
    'bare: the same frames over bare WebSockets, no store, no spool (3 runs); BullMQ: no-op jobs on a local Redis without persistence (2 runs, created → finished)',
    'A/A: each baseline’s runs and their spread (max − min) ÷ median; differences smaller than the spread are noise',
  ];
  for (const r of results) {
    const c = r.real.cpu;
    if (c) {
      const by = Object.entries(c.byGroup).map(([name, v]) => `${name} ${(v.userSec + v.systemSec).toFixed(1)}`);
      notes.push(
        `${r.store.store}: tasks created in ${(r.real.createMs / 1000).toFixed(1)} s of ${(r.real.elapsedMs / 1000).toFixed(1)} s; ` +
          `CPU s: ${by.join(', ')}, kernel ${c.kernelSec.toFixed(1)}, foreign ${c.foreignSec.toFixed(1)}; machine ${c.machineBusyPct.toFixed(0)} % busy`,
      );
    }
    const st = r.real.statements;
    const verbs = Object.entries(st.perTask).filter(([, n]) => n > 0);
    notes.push(
      `${r.store.store}: store statements per task: ${verbs.map(([v, n]) => `${v} ${n.toFixed(2)}`).join(', ')} ` +
        `(${verbs.reduce((sum, [, n]) => sum + n, 0).toFixed(1)} in all); store time per task ${st.msPerTask.toFixed(2)} ms ` +
        `(${verbs.map(([v]) => `${v} ${(st.msPerTaskByVerb[v] ?? 0).toFixed(2)}`).join(', ')}; statements waiting at once each count their own)`,
    );
    notes.push(
      `${r.store.store}: bare A/A ${r.bare.runs.map((x) => x.toFixed(0)).join(' / ')} t/s (spread ${r.bare.spreadPct.toFixed(1)} %); ` +
        `BullMQ A/A ${r.bullmq.runs.map((x) => x.toFixed(0)).join(' / ')} t/s (spread ${r.bullmq.spreadPct.toFixed(1)} %)`,
    );
    const o = r.real.openLoop;
    if (o)
      notes.push(
        `${r.store.store}: open loop ${o.tasks} tasks at ${o.ratePerSec.toFixed(1)}/s (achieved ${o.achievedPerSec.toFixed(1)}/s): ` +
          `dispatched → accepted p50 ${f(o.dispatchToAcceptedP50Ms)} ms, p99 ${f(o.dispatchToAcceptedP99Ms)} ms; created → ended p99 ${f(o.endToEndP99Ms)} ms`,
      );
    if (r.real.fsyncs)
      notes.push(
        `${r.store.store}: agents made ${r.real.fsyncs.calls} fsync/fdatasync calls: ${r.real.fsyncs.perTask.toFixed(1)} per task (under strace: do not quote this run’s tasks/s)`,
      );
    if (r.real.retried > 0) notes.push(`${r.store.store}: ${r.real.retried} task(s) needed a second attempt`);
    const noisy = Object.entries(r.real.warnings).filter(([, n]) => n > 0);
    if (noisy.length > 0) notes.push(`${r.store.store}: warnings: ${noisy.map(([p, n]) => `${p}: ${n}`).join(', ')}`);
  }
  await writeResults({
    benchmark: 'dispatch',
    startedAt,
    title: `dispatch: ${opts.tasks} no-op backup tasks, ${opts.agents} agents × ${SLOTS} slots${opts.pluginIsolation === 'worker' ? '' : `, plugins ${opts.pluginIsolation}`}`,
    options: {
      ...opts,
      slots: SLOTS,
      createConcurrency: CREATE_CONCURRENCY,
      instances: Math.min(INSTANCES, opts.tasks),
    },
    head: [
      'store',
      'real t/s',
      'bare t/s',
      'BullMQ t/s',
      'real/bare',
      'real/BullMQ',
      'real p50 / p99 ms',
      'in-flight p50 / p99 ms',
      'bare p50 / p99 ms',
      'BullMQ p50 / p99 ms',
    ],
    rows: results.map((r) => [
      r.store.store,
      r.real.tasksPerSec.toFixed(0),
      r.bare.median.toFixed(0),
      r.bullmq.median.toFixed(0),
      `${(r.ratioBare * 100).toFixed(1)} %`,
      `${(r.ratioBullmq * 100).toFixed(1)} %`,
      `${f(r.real.p50Ms)} / ${f(r.real.p99Ms)}`,
      `${f(r.real.inFlightP50Ms)} / ${f(r.real.inFlightP99Ms)}`,
      `${f(r.bare.p50Ms)} / ${f(r.bare.p99Ms)}`,
      `${f(r.bullmq.p50Ms)} / ${f(r.bullmq.p99Ms)}`,
    ]),
    notes,
    figures: results,
    disturbed,
    foreignPct,
  });
}

/** Each replica count's runs (the first count twice: its A/A band) and its ratio to one replica. */
interface ReplicaResult {
  replicas: number;
  runs: RealRun[];
  band: Band;
  /** Median tasks/s ÷ the median of the one-replica runs. */
  ratio: number;
  /** CPU ms per task of the median run: every control plane summed, the agents, the database server. */
  cpuMsPerTask: { controlPlanes: number; agents: number; databaseServer: number } | null;
  machineBusyPct: number | null;
}

const groupMs = (c: CpuUse, name: string, tasks: number) => {
  const g = c.byGroup[name];
  return g ? ((g.userSec + g.systemSec) * 1000) / tasks : 0;
};

/**
 * B1 on replicas: the real path with 1, 2, 3… control planes on one fresh MariaDB/MySQL database
 * each time, the agents spread evenly over them (startAgents) and the creates round-robin over
 * them; the one-replica run is repeated at the end, which gives the A/A band and shows drift
 * over the run. Headline: tasks/s per replica count ÷ one replica's, and the CPU per task of all
 * control planes together. No bare or BullMQ baseline: one replica is this case's baseline.
 */
async function runReplicasBench(opts: DispatchOptions & { replicas: number[] }): Promise<void> {
  const startedAt = new Date();
  const [store] = await chooseStores(['mysql']);
  if (!store) throw new Error('--replicas needs MariaDB/MySQL, and none answered');
  const order = [...opts.replicas, opts.replicas[0]!];
  const runs: RealRun[] = [];
  for (const [i, n] of order.entries()) {
    log(
      `mysql: real path on ${n} replica(s), ${opts.agents} agents × ${SLOTS} slots (run ${i + 1} of ${order.length})`,
    );
    runs.push(await runReal('mysql', opts, n));
  }
  const results: ReplicaResult[] = [];
  for (const n of opts.replicas) {
    const mine = runs.filter((r) => r.replicas === n);
    const b = band(mine.map((r) => r.tasksPerSec));
    const median = [...mine].sort((x, y) => x.tasksPerSec - y.tasksPerSec)[Math.floor((mine.length - 1) / 2)]!;
    const c = median.cpu;
    results.push({
      replicas: n,
      runs: mine,
      band: b,
      ratio: 0,
      cpuMsPerTask: c
        ? {
            controlPlanes: groupMs(c, 'control plane', opts.tasks),
            agents: groupMs(c, 'agents', opts.tasks),
            databaseServer: groupMs(c, 'database server', opts.tasks),
          }
        : null,
      machineBusyPct: c ? c.machineBusyPct : null,
    });
  }
  const one = results.find((r) => r.replicas === 1)!;
  for (const r of results) r.ratio = r.band.median / one.band.median;
  const { foreignPct, disturbed } = disturbance(runs.map((r) => r.cpu));
  const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  const spread = (n: number) =>
    Array.from({ length: n }, (_, k) => Math.floor(opts.agents / n) + (k < opts.agents % n ? 1 : 0)).join('/');
  const notes = [
    `runs in this order: ${order.join(', ')} replica(s), each on a fresh database; the ${opts.replicas[0]}-replica run twice: ` +
      `its A/A spread ${one.band.spreadPct.toFixed(1)} % (${one.band.runs.map((x) => x.toFixed(0)).join(' / ')} t/s); a ratio within it of 1.00 is no change`,
    'every agent holds all the URLs and its session on one replica (agents per replica in the table); creates go round-robin over the replicas',
    'CPU ms per task over the timed window (creates to the last task ended): all control planes summed, all agents, the database server; ' +
      'machine busy: the share of all cores in use over that window, by anything',
    'every run checked: each task succeeded, as many tasks stored as created, one backup record each',
  ];
  for (const r of runs) {
    const noisy = Object.entries(r.warnings).filter(([, n]) => n > 0);
    if (noisy.length > 0)
      notes.push(`${r.replicas} replica(s): warnings: ${noisy.map(([p, n]) => `${p}: ${n}`).join(', ')}`);
    if (r.retried > 0) notes.push(`${r.replicas} replica(s): ${r.retried} task(s) needed a second attempt`);
  }
  await writeResults({
    benchmark: 'dispatch-replicas',
    startedAt,
    title:
      `dispatch on replicas: ${opts.tasks} no-op backup tasks, ${opts.agents} agents × ${SLOTS} slots, ` +
      `${store.version} (${store.durability})`,
    options: {
      ...opts,
      slots: SLOTS,
      createConcurrency: CREATE_CONCURRENCY,
      instances: Math.min(INSTANCES, opts.tasks),
    },
    head: [
      'replicas',
      'agents each',
      't/s (runs)',
      '÷ 1 replica',
      'CPU ms/task: control planes',
      'agents',
      'database',
      'machine busy',
      'p50 / p99 ms',
      'in-flight p50 / p99 ms',
    ],
    rows: results.map((r) => {
      const m = [...r.runs].sort((x, y) => x.tasksPerSec - y.tasksPerSec)[Math.floor((r.runs.length - 1) / 2)]!;
      return [
        String(r.replicas),
        spread(r.replicas),
        r.runs.length > 1 ? bandText(r.band) : r.band.median.toFixed(0),
        r.ratio.toFixed(2),
        r.cpuMsPerTask ? r.cpuMsPerTask.controlPlanes.toFixed(1) : 'n/a',
        r.cpuMsPerTask ? r.cpuMsPerTask.agents.toFixed(1) : 'n/a',
        r.cpuMsPerTask ? r.cpuMsPerTask.databaseServer.toFixed(1) : 'n/a',
        r.machineBusyPct !== null ? `${r.machineBusyPct.toFixed(0)} %` : 'n/a',
        `${f(m.p50Ms)} / ${f(m.p99Ms)}`,
        `${f(m.inFlightP50Ms)} / ${f(m.inFlightP99Ms)}`,
      ];
    }),
    notes,
    figures: { store, results },
    disturbed,
    foreignPct,
  });
}
