/**
 * Benchmark entry point: `npx pnpm@10 bench <case> [options]` (the root script builds first, then
 * runs this file with tsx). One runner for every case: it parses the options, runs the case,
 * cleans up after Ctrl-C, and fails loudly (exit 1, the reason and the processes' last lines).
 */
import { parseArgs } from 'node:util';
import type { Backend } from '@cairn/test-harness/databases';
import { PLUGIN_ISOLATIONS, type PluginIsolation } from '@cairn/plugin-sdk/host';
import { cleanupAll, profileInto } from './common.js';
import { runDispatchBench } from './dispatch.js';
import { runHttpBench } from './http.js';
import { runProgressBench } from './progress.js';
import { runIdleAgentsBench } from './idle-agents.js';
import { resticInterrupted, runResticBench } from './restic.js';
import { runSchedulesScaleBench } from './schedules-scale.js';
import { runSchedulesBench, schedulesInterrupted } from './schedules.js';
import { runTenantsBench, tenantsInterrupted } from './tenants.js';
import { runWireBench } from './wire.js';

const USAGE = `usage: pnpm bench <case> [options]

  --cpu-prof         (dispatch, http, idle-agents, progress, schedules-scale) V8 CPU profiles of the
                     control plane and agents into bench/results/prof-<case>/

  dispatch   no-op backup tasks through control plane + agents vs. a bare WebSocket baseline and BullMQ
    --tasks N        tasks per run (default 2000)
    --agents K       agent processes, 8 slots each (default 4)
    --stores LIST    sqlite and/or mysql (default: sqlite, plus mysql when CAIRN_TEST_MYSQL_URL is set
                     or MariaDB/MySQL answers on 127.0.0.1:3306 as root)
    --open-loop      also: tasks created at half the measured rate, p99 dispatched → accepted
    --strace         run the agents under strace -c: fsyncs per task
    --plugin-isolation worker|inline
                     how the agents host the plugin (default worker, a thread per running task;
                     inline measures what that thread costs)
    --replicas LIST  instead of the baselines: the real path on each count of control-plane replicas
                     (e.g. 1,2,3; must hold 1) on MariaDB/MySQL; one replica runs first and again at
                     the end (its A/A band); defaults then --tasks 300 --agents 6
  restic     a full and a 1 %-changed incremental backup, through Cairn vs. restic alone, A/B/B/A
    --size-mib N     size of the generated tree (default 1024)
    --repeat R       how many times the A/B/B/A sequence runs (default 1)
  tenants    a quiet tenant's fires and reads, alone and beside a tenant at its quota limits
    --minutes M      minutes measured per phase (default 3)   --stores LIST
  schedules  the scheduler's catch-up of N user schedules after 12 h down vs. bare writes
    --schedules N    (default 10000)   --stores LIST
  idle-agents  N agents connected and idle: control-plane KB per agent and idle CPU vs. a bare ws server
    --agents N       (default 10000)   --procs P  client processes (default 4)
    --seconds S      idle window (default 30)   --stores sqlite|mysql (one; default sqlite)
  progress   running tasks reporting progress each second into MariaDB/MySQL: committed/s and
             emit → commit vs. raw mysql2 multi-row (ceiling) and one-row (floor) inserts
    --agents K       (default 10)   --slots S  per agent (default 100)   --seconds  task length (default 60)
    --rate R         progress reports per task a second (default 1; a tenant holds at most 1000 running tasks)
  schedules-scale  N user schedules: an idle tick, 1 % due at once → queued, memory per schedule,
                   vs. croner computing every next run
    --schedules N    (default 100000)   --stores LIST
    --rpo-minutes M  also put every instance under an RPO of M minutes (default: none)
  http       autocannon against authenticated reads and a create vs. a bare Hono hello
    --seconds S      per target and run (default 5)   --stores LIST
  wire       protobuf (@cairn/proto) vs JSON for assign, progress and result frames
    --ops N          operations per measurement (default 50000)
`;

function usage(problem: string): never {
  process.stderr.write(`${problem}\n\n${USAGE}`);
  process.exit(2);
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const OPTIONS = {
  tasks: { type: 'string' },
  agents: { type: 'string' },
  stores: { type: 'string' },
  'size-mib': { type: 'string' },
  repeat: { type: 'string' },
  minutes: { type: 'string' },
  schedules: { type: 'string' },
  seconds: { type: 'string' },
  ops: { type: 'string' },
  procs: { type: 'string' },
  slots: { type: 'string' },
  rate: { type: 'string' },
  'rpo-minutes': { type: 'string' },
  'open-loop': { type: 'boolean' },
  strace: { type: 'boolean' },
  'cpu-prof': { type: 'boolean' },
  replicas: { type: 'string' },
  'plugin-isolation': { type: 'string' },
} as const;

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: OPTIONS });
} catch (err) {
  usage((err as Error).message);
}
const v = parsed.values;
const int = (name: keyof typeof OPTIONS, fallback: number) =>
  positiveInt(name, v[name] as string | undefined, fallback);

let stores: Backend[] | undefined;
if (v.stores !== undefined) {
  const names = v.stores.split(',').map((s) => s.trim());
  const bad = names.filter((s) => s !== 'sqlite' && s !== 'mysql');
  if (bad.length > 0 || names.length === 0) usage(`--stores takes sqlite and/or mysql, got ${v.stores}`);
  stores = names as Backend[];
}
const storeOpt = stores ? { stores } : {};

/** `--replicas 1,2,3`: distinct positive counts, one of them 1 (the figures are ratios to it). */
function replicaCounts(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((s) => s.trim());
  const counts = parts.map(Number);
  if (parts.some((p, i) => !/^[1-9][0-9]*$/.test(p) || counts[i]! > 16))
    usage(`--replicas takes replica counts 1-16 separated by commas (e.g. 1,2,3), got ${JSON.stringify(text)}`);
  if (new Set(counts).size !== counts.length) usage(`--replicas names a count twice: ${text}`);
  if (!counts.includes(1)) usage(`--replicas must hold 1 (every figure is a ratio to one replica), got ${text}`);
  if (stores?.includes('sqlite'))
    usage('--replicas runs on MariaDB/MySQL only: SQLite serves one process (a second control plane refuses to start)');
  if (v['open-loop'] || v.strace) usage('--replicas measures the closed loop only: no --open-loop or --strace');
  return [1, ...counts.filter((c) => c !== 1)];
}

/** `--plugin-isolation`: one of the agent's own modes (worker when not given). */
function pluginIsolation(text: string | undefined): PluginIsolation {
  if (text === undefined) return 'worker';
  if (!(PLUGIN_ISOLATIONS as readonly string[]).includes(text))
    usage(`--plugin-isolation takes ${PLUGIN_ISOLATIONS.join(' or ')}, got ${JSON.stringify(text)}`);
  return text as PluginIsolation;
}

/** Each case: which options it takes, and how it runs. */
const CASES: Record<string, { options: (keyof typeof OPTIONS)[]; run: () => Promise<void> }> = {
  dispatch: {
    options: ['tasks', 'agents', 'stores', 'open-loop', 'strace', 'replicas', 'plugin-isolation'],
    run: () => {
      const replicas = replicaCounts(v.replicas);
      return runDispatchBench({
        tasks: int('tasks', replicas ? 300 : 2000),
        agents: int('agents', replicas ? 6 : 4),
        stores,
        openLoop: v['open-loop'] ?? false,
        strace: v.strace ?? false,
        ...(replicas ? { replicas } : {}),
        pluginIsolation: pluginIsolation(v['plugin-isolation']),
      });
    },
  },
  restic: {
    options: ['size-mib', 'repeat'],
    run: () => runResticBench({ sizeMib: int('size-mib', 1024), repeat: int('repeat', 1) }),
  },
  tenants: { options: ['minutes', 'stores'], run: () => runTenantsBench({ minutes: int('minutes', 3), ...storeOpt }) },
  schedules: {
    options: ['schedules', 'stores'],
    run: () => runSchedulesBench({ schedules: int('schedules', 10_000), ...storeOpt }),
  },
  'idle-agents': {
    options: ['agents', 'procs', 'seconds', 'stores'],
    run: () => {
      if (stores && stores.length !== 1) usage('idle-agents runs on one store: --stores sqlite or --stores mysql');
      return runIdleAgentsBench({
        agents: int('agents', 10_000),
        procs: int('procs', 4),
        seconds: int('seconds', 30),
        store: stores?.[0] ?? 'sqlite',
      });
    },
  },
  progress: {
    options: ['agents', 'slots', 'seconds', 'rate'],
    run: () =>
      runProgressBench({
        agents: int('agents', 10),
        slots: int('slots', 100),
        seconds: int('seconds', 60),
        rate: int('rate', 1),
      }),
  },
  'schedules-scale': {
    options: ['schedules', 'stores', 'rpo-minutes'],
    run: () =>
      runSchedulesScaleBench({ schedules: int('schedules', 100_000), stores, rpoMinutes: int('rpo-minutes', 0) }),
  },
  http: { options: ['seconds', 'stores'], run: () => runHttpBench({ seconds: int('seconds', 5), stores }) },
  wire: { options: ['ops'], run: () => runWireBench({ ops: int('ops', 50_000) }) },
};

const [benchmark, ...extra] = parsed.positionals;
const chosen = benchmark === undefined ? undefined : CASES[benchmark];
if (!chosen) usage(benchmark ? `unknown benchmark "${benchmark}"` : 'which benchmark?');
if (extra.length > 0) usage(`unexpected arguments: ${extra.join(' ')}`);
/** Cases that start a control plane (and agents) can profile them. */
const PROFILED = ['dispatch', 'http', 'idle-agents', 'progress', 'schedules-scale'];
const foreign = Object.keys(v).filter(
  (k) => !chosen.options.includes(k as keyof typeof OPTIONS) && !(k === 'cpu-prof' && PROFILED.includes(benchmark!)),
);
if (foreign.length > 0) usage(`${benchmark} does not take --${foreign.join(', --')}`);

// Without this a Ctrl-C would leave a database (on MySQL) and agent state dirs behind.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    stopping = true;
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void Promise.allSettled([cleanupAll(), resticInterrupted(), tenantsInterrupted(), schedulesInterrupted()]).finally(
      () => process.exit(130),
    );
  });

if (v['cpu-prof']) process.stderr.write(`[bench] CPU profiles into ${profileInto(benchmark!)}\n`);

try {
  await chosen.run();
} catch (err) {
  if (stopping) await new Promise(() => {}); // the signal handler exits once it has cleaned up
  // Loud on purpose: a benchmark that lost or failed a task has no figures worth printing.
  process.stderr.write(`\nbench ${benchmark} FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  // A case that failed midway may not have reached its own cleanup: its control plane and agents
  // would outlive the bench and load the machine for every later run.
  await Promise.allSettled([cleanupAll(), resticInterrupted(), tenantsInterrupted(), schedulesInterrupted()]);
  process.exit(1);
}
