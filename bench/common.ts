/**
 * What every benchmark case shares: the log line, percentiles, a bounded pool, the A/A noise
 * band, the disturbance check and the one results writer (JSON and a Markdown table in
 * bench/results/, not committed). See docs/performance.md, "Rules".
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import * as prettier from 'prettier';
import WebSocket from 'ws';
import { Api } from '@cairn/test-harness/api';
import { freshDatabase, type Backend, type TestDatabase } from '@cairn/test-harness/databases';
import {
  enrollAgent,
  Proc,
  root,
  startAgent,
  startControlPlane,
  type ControlPlaneProc,
} from '@cairn/test-harness/processes';
import { waitFor } from '@cairn/test-harness/wait';
import type { CpuUse } from './cpu.js';

/**
 * Above this share of the machine used by processes outside the bench, a run's figures say more
 * about the neighbours than about Cairn; they are still printed, flagged.
 */
export const FOREIGN_LIMIT_PCT = 5;

export const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `fn(0..n-1)` with at most `limit` calls in flight; the first failure stops handing out work. */
export async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
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
 * The A/A noise band of repeated runs of the same thing: (max − min) ÷ median. A difference
 * between two arms smaller than this is noise.
 */
export interface Band {
  runs: number[];
  median: number;
  spreadPct: number;
}

export function band(runs: number[]): Band {
  if (runs.length === 0) throw new Error('noise band of no runs');
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = Number.isInteger(mid) ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[Math.floor(mid)]!;
  return { runs, median, spreadPct: median === 0 ? 0 : (100 * (sorted.at(-1)! - sorted[0]!)) / median };
}

export const bandText = (b: Band, digits = 0) =>
  `${b.median.toFixed(digits)} (A/A ${b.runs.map((r) => r.toFixed(digits)).join(' / ')}, spread ${b.spreadPct.toFixed(1)} %)`;

/** The highest foreign share of the CPU windows given (null windows: not measured). */
export function disturbance(windows: (Pick<CpuUse, 'foreignPct'> | null | undefined)[]): {
  foreignPct: number | null;
  disturbed: boolean;
} {
  const pcts = windows.flatMap((w) => (w ? [w.foreignPct] : []));
  const foreignPct = pcts.length > 0 ? Math.max(...pcts) : null;
  return { foreignPct, disturbed: foreignPct !== null && foreignPct > FOREIGN_LIMIT_PCT };
}

export function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** A Markdown table (prettier leaves it as is: cells padded to the column's width). */
export function markdownTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export interface CaseReport {
  /** The case's name, also the file name's start. */
  benchmark: string;
  startedAt: Date;
  /** One line saying what ran (sizes, store). */
  title: string;
  options: Record<string, unknown>;
  head: string[];
  rows: string[][];
  /** Printed under the table: what each column means, targets met or missed. */
  notes: string[];
  /** Every figure, for the JSON. */
  figures: unknown;
  disturbed: boolean;
  foreignPct: number | null;
}

/**
 * Prints the table, its notes and the disturbance warning, and writes
 * bench/results/<benchmark>-<start time>.json and .md. Returns the JSON file's path.
 */
export async function writeResults(r: CaseReport): Promise<string> {
  const warning =
    r.disturbed && r.foreignPct !== null
      ? `WARNING: processes outside the bench used ${r.foreignPct.toFixed(0)} % of the machine while it was ` +
        'timed (limit 5 %): these figures are not trustworthy; run again on an idle machine'
      : null;
  const table = markdownTable(r.head, r.rows);
  const text = [`${r.title}`, '', table, '', ...r.notes.map((n) => `- ${n}`), ...(warning ? ['', warning] : [])];
  process.stdout.write(`\n${text.join('\n')}\n`);

  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  fs.mkdirSync(dir, { recursive: true });
  const stamp = r.startedAt.toISOString().replace(/[:.]/g, '-');
  const base = `${dir}${r.benchmark}-${stamp}`;
  const json = {
    benchmark: r.benchmark,
    startedAt: r.startedAt.toISOString(),
    options: r.options,
    machine: machine(),
    disturbed: r.disturbed,
    foreignPct: r.foreignPct,
    figures: r.figures,
  };
  // Three decimals are more than these measurements can tell apart.
  const round = (_: string, v: unknown) =>
    typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v;
  // Formatted as `prettier --check .` expects, so a result copied into the repository passes.
  const options = (await prettier.resolveConfig(`${base}.json`)) ?? {};
  fs.writeFileSync(`${base}.json`, await prettier.format(JSON.stringify(json, round), { ...options, parser: 'json' }));
  const md = [`# ${r.benchmark}`, '', ...text, '', `Machine: ${JSON.stringify(machine())}`, ''].join('\n');
  fs.writeFileSync(`${base}.md`, await prettier.format(md, { ...options, parser: 'markdown' }));
  process.stdout.write(`\nwritten: ${base}.json and .md\n`);
  return `${base}.json`;
}

/** Cleanups of runs in progress, for a bench cut short by Ctrl-C or SIGTERM. */
const inProgress = new Set<() => Promise<void>>();

/**
 * Registers `fn` to run once, at the end of the run or on a signal, whichever comes first;
 * answers the function that runs it.
 */
export function onCleanup(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const cleanup = () =>
    (done ??= (async () => {
      inProgress.delete(cleanup);
      await fn();
    })());
  inProgress.add(cleanup);
  return cleanup;
}

export async function cleanupAll(): Promise<void> {
  await Promise.allSettled([...inProgress].map((cleanup) => cleanup()));
}

/**
 * Starts `bench/<file>` as a child process (node with tsx, like the bench) and waits for its
 * first stdout line, which such children use to say they are ready (e.g. their port). A child
 * that exits first fails the run with its stderr.
 */
export async function startChild(
  file: string,
  args: string[],
  opts: { nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<{ proc: Proc; ready: string }> {
  const proc = new Proc(
    spawn(
      process.execPath,
      [...(opts.nodeArgs ?? []), '--import', 'tsx', fileURLToPath(new URL(`./${file}`, import.meta.url)), ...args],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (proc.lines.length === 0) {
    if (!proc.running)
      throw new Error(`${file} exited (${proc.exitCode}) before it was ready: ${proc.stderr.join('\n')}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${file} was not ready in time: ${proc.stderr.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, ready: proc.lines[0]! };
}

/** Resident set size of a process, from its /proc status (KiB), or null off Linux. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Where `SIGUSR1` opens a Node process's inspector. */
const INSPECTOR = 'http://127.0.0.1:9229';

/**
 * A process's resident set size (KiB) after two full garbage collections, so that what a case
 * measures before and after is what is live, not what the collector has yet to free (creating
 * 10,000 agents through the API leaves megabytes of garbage that a later collection returns,
 * which made "after minus before" come out near zero or below it). The collections run through
 * the process's inspector, opened with `SIGUSR1` (Node's own signal for it) on 127.0.0.1:9229;
 * nothing in the process changes for it. Throws if another process holds that port.
 */
export async function settledRssKiB(pid: number): Promise<number | null> {
  if (!fs.existsSync(`/proc/${pid}`)) return null;
  const list = async () => {
    try {
      const targets = (await (await fetch(`${INSPECTOR}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
      return targets.length > 0 ? targets : undefined;
    } catch {
      return undefined;
    }
  };
  let targets = await list();
  if (!opened.has(pid)) {
    if (targets)
      throw new Error(`${INSPECTOR} answers before pid ${pid} was asked to open its inspector: stop what holds it`);
    process.kill(pid, 'SIGUSR1');
    opened.add(pid);
    targets = await waitFor(list, `the inspector of pid ${pid}`, 10_000);
  }
  const url = targets?.[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`the inspector of pid ${pid} lists no target`);
  const ws = new WebSocket(url);
  // One handler each for answers and for a socket that fails or closes: what is waited for ends either way.
  const waiting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  const failAll = (err: Error) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
    const w = msg.id === undefined ? undefined : waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id!);
    if (msg.error) w.reject(new Error(`HeapProfiler.collectGarbage: ${msg.error.message}`));
    else w.resolve();
  });
  ws.on('close', () => failAll(new Error(`the inspector of pid ${pid} closed before it answered`)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', (err) => failAll(err));
  try {
    for (const id of [1, 2]) {
      const answered = new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject }));
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      await answered;
    }
  } finally {
    ws.close();
  }
  return rssKiB(pid);
}
const opened = new Set<number>();

/** One sample of a Prometheus text exposition (first series of that name), or null. */
export function metric(text: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
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

export interface StoreChoice {
  store: Backend;
  /** Server version, and the settings that decide how often it syncs to disk. */
  version: string;
  durability: string;
}

/**
 * The stores a run covers: those asked for (`wanted`), or SQLite plus MariaDB/MySQL when one
 * answers. A store asked for that does not answer fails the run.
 */
export async function chooseStores(wanted: Backend[] | undefined): Promise<StoreChoice[]> {
  const stores: StoreChoice[] = [];
  if (!wanted || wanted.includes('sqlite'))
    stores.push({ store: 'sqlite', version: 'better-sqlite3', durability: 'journal_mode=WAL, synchronous=NORMAL' });
  if (!wanted || wanted.includes('mysql')) {
    const mysql = await findMysql(wanted !== undefined);
    if ('skipped' in mysql) log(`skipped mysql: ${mysql.skipped}`);
    else stores.push({ store: 'mysql', version: mysql.version, durability: mysql.durability });
  }
  return stores;
}

/**
 * Production defaults (the harness shortens them for tests); set explicitly so a bench measures
 * what an operator would run, and a change of defaults does not move the figures silently.
 */
export const CONTROL_PLANE_ENV = {
  CAIRN_HEARTBEAT_MS: '5000',
  CAIRN_TASK_LEASE_MS: '60000',
  CAIRN_DISPATCH_POLL_MS: '1000',
  CAIRN_MAX_CONCURRENT_TASKS: '1000',
  // Info, not warn: the harness finds the port in the "listening" line. Its output is kept in
  // memory (for diagnostics on failure), never printed.
  CAIRN_LOG_LEVEL: 'info',
};

/** The last lines of every process, for a failure message that can be acted on. */
export function diagnostics(procs: [string, Proc][]): string {
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

let profileDir: string | undefined;

/**
 * `--cpu-prof`: from now on every control plane and agent the case starts writes a V8 CPU profile
 * into bench/results/prof-<case>/ when it exits (NODE_OPTIONS refuses --cpu-prof, so it is
 * passed on their command lines). Answers the directory.
 */
export function profileInto(benchCase: string): string {
  profileDir = fileURLToPath(new URL(`./results/prof-${benchCase}/`, import.meta.url));
  return profileDir;
}

const profArgs = (): string[] => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);

export interface Stack {
  db: TestDatabase;
  /** The first control plane (agents enroll through it). */
  cp: ControlPlaneProc;
  /** Every control plane on the database, `cp` first (one unless `replicas` asked for more). */
  replicas: ControlPlaneProc[];
  api: Api;
  /** Every process started for the run, the control plane first; stopped last-first by cleanup. */
  procs: [string, Proc][];
  /** Agent state dirs, removed by cleanup. */
  dirs: string[];
  cleanup: () => Promise<void>;
}

/**
 * A fresh database on `store` and `replicas` control planes on it (default one) with production
 * timings (plus `env`); cleanup (also on Ctrl-C) stops every process in `procs`, last first, and
 * drops the database. SQLite serves one process: more than one replica needs MariaDB/MySQL.
 */
export async function startStack(
  store: Backend,
  opts: { env?: Record<string, string>; replicas?: number } = {},
): Promise<Stack> {
  const count = opts.replicas ?? 1;
  if (store === 'sqlite' && count > 1)
    throw new Error(`${count} replicas on SQLite: SQLite serves one process (a second control plane refuses to start)`);
  const db = await freshDatabase(store);
  const procs: [string, Proc][] = [];
  const dirs: string[] = [];
  const replicas: ControlPlaneProc[] = [];
  const cleanup = onCleanup(async () => {
    // Agents (and whatever else the case started) first, so none of them logs a lost control
    // plane on the way out; each group at once.
    const planes = new Set(replicas.map((cp) => cp.proc));
    await Promise.all(procs.filter(([, p]) => !planes.has(p)).map(([, p]) => p.stop()));
    await Promise.all([...planes].map((p) => p.stop()));
    await db.drop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  try {
    const start = async (i: number) => {
      const cp = await startControlPlane({
        databaseUrl: db.url,
        dataDir: db.dataDir,
        env: { ...CONTROL_PLANE_ENV, ...opts.env },
        nodeArgs: profArgs(),
      });
      procs.push([count === 1 ? 'control plane' : `control plane ${i}`, cp.proc]);
      replicas[i] = cp;
    };
    // The first migrates the fresh database; the others then start together.
    await start(0);
    // Settled, all of them, before a failure cleans up: none may start after the cleanup ran.
    const rest = await Promise.allSettled(Array.from({ length: count - 1 }, (_, i) => start(i + 1)));
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const cp = replicas[0]!;
    return { db, cp, replicas, api: new Api(cp.url, cp.adminToken), procs, dirs, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export const ZONE = 'bench';

/** Whether two URLs name the same host and port (an agent socket URL and a control plane's). */
function sameHost(a: string, b: string): boolean {
  try {
    return new URL(a).host === new URL(b).host;
  } catch {
    return false;
  }
}

/**
 * Setup, not timed: a dummy provider in ZONE with `config`, an offering of it for ad-hoc
 * backups, and `n` instances on it (an instance runs one task at a time). Answers their ids.
 */
export async function dummyInstances(api: Api, n: number, config: Record<string, unknown>): Promise<string[]> {
  const provider = await api.expect(201, 'POST', `/v1/zones/${ZONE}/providers`, {
    name: 'bench-dummy',
    plugin: '@cairn/plugin-dummy',
    config,
  });
  const offering = await api.expect(201, 'POST', '/v1/offerings', {
    name: 'bench',
    zone: ZONE,
    providerId: provider.id,
    allowAdhoc: true,
    allowUserSchedules: false,
  });
  const ids: string[] = [];
  await pool(n, 8, async (i) => {
    const inst = await api.expect(201, 'POST', '/v1/instances', { name: `bench-${i}`, zone: ZONE, locator: {} });
    await api.expect(200, 'PUT', `/v1/instances/${inst.id}/offering`, { offeringId: offering.id });
    ids[i] = inst.id as string;
  });
  return ids;
}

/** How many times an agent is started again to land on a replica with room before the run gives up. */
const PLACEMENT_TRIES = 30;

/**
 * Enrolls and starts `n` real agents with `slots` each; they join the stack's processes. With
 * several replicas every agent is given all their URLs (`--server`, the first rotated from agent
 * to agent) and the agents are spread evenly: R replicas hold n ÷ R each (the first n mod R one
 * more). An agent starts at a random URL of its list, so one that landed on a replica already
 * holding its share is stopped and started again (setup, not timed): the spread is exact, not
 * left to chance.
 */
export async function startAgents(
  stack: Stack,
  n: number,
  opts: { slots: number; args?: string[]; wrapper?: (i: number) => string[] },
): Promise<Proc[]> {
  const out: Proc[] = [];
  const urls = stack.replicas.map((cp) => cp.url);
  const share = urls.map((_, r) => Math.floor(n / urls.length) + (r < n % urls.length ? 1 : 0));
  const held = urls.map(() => 0);
  // A few at a time: each start is a Node process coming up, which is most of the setup's time.
  // A failure is thrown only once every start in flight has ended, so none outlives the cleanup.
  let failure: { err: unknown } | undefined;
  await pool(n, 6, async (i) => {
    if (failure) return;
    try {
      await startOne(i);
    } catch (err) {
      failure ??= { err };
    }
  });
  if (failure) throw failure.err;
  async function startOne(i: number): Promise<void> {
    const { stateDir } = await enrollAgent(stack.cp, ZONE, `bench-agent-${i}`);
    stack.dirs.push(stateDir);
    const first = i % urls.length;
    const servers = [...urls.slice(first), ...urls.slice(0, first)];
    const args = [...(urls.length > 1 ? ['--server', servers.join(',')] : []), ...(opts.args ?? [])];
    for (let attempt = 1; ; attempt++) {
      const p = await startAgent(stateDir, {
        slots: opts.slots,
        ...(args.length > 0 ? { args } : {}),
        nodeArgs: profArgs(),
        ...(opts.wrapper ? { wrapper: opts.wrapper(i) } : {}),
      });
      const entry: [string, Proc] = [`agent ${i}`, p];
      // In the stack's processes at once, so a failure elsewhere stops it too.
      stack.procs.push(entry);
      const url = String(p.logs().find((l) => l['msg'] === 'agent connected')?.['url']);
      const on = urls.findIndex((u) => sameHost(u, url));
      if (on >= 0 && held[on]! < share[on]!) {
        held[on]!++;
        out[i] = p;
        return;
      }
      await p.stop();
      stack.procs.splice(stack.procs.indexOf(entry), 1);
      if (attempt === PLACEMENT_TRIES)
        throw new Error(`agent ${i} found no replica with room in ${PLACEMENT_TRIES} starts (last on ${url})`);
    }
  }
  // The agent logs "connected" on welcome; the dispatcher counts it only once the hello is stored.
  await waitFor(async () => {
    const agents = await stack.api.expect<{ items: { state: string }[] }>(200, 'GET', '/v1/agents?limit=500');
    return agents.items.filter((a) => a.state === 'connected').length >= n;
  }, `${n} agents to show as connected`);
  return out;
}
