/**
 * Benchmark entry point: `npx pnpm@10 bench dispatch [--tasks N] [--agents K] [--stores sqlite,mysql]`,
 * `npx pnpm@10 bench restic [--size-mib N] [--repeat R]` or `npx pnpm@10 bench tenants [--minutes M]
 * [--stores sqlite,mysql]`, `npx pnpm@10 bench schedules [--schedules N] [--stores sqlite,mysql]` (the root script builds first, then runs this file with tsx).
 */
import { parseArgs } from 'node:util';
import type { Backend } from '@cairn/test-harness/databases';
import { interrupted, runDispatchBench } from './dispatch.js';
import { resticInterrupted, runResticBench } from './restic.js';
import { runSchedulesBench, schedulesInterrupted } from './schedules.js';
import { runTenantsBench, tenantsInterrupted } from './tenants.js';

const USAGE = `usage: pnpm bench dispatch [--tasks N] [--agents K] [--stores sqlite,mysql]
       pnpm bench restic [--size-mib N] [--repeat R]
       pnpm bench tenants [--minutes M] [--stores sqlite,mysql]
       pnpm bench schedules [--schedules N] [--stores sqlite,mysql]

  dispatch   no-op backup tasks through control plane + agents vs. a bare WebSocket baseline
  --tasks    tasks per run (default 2000)
  --agents   agent processes, 8 slots each (default 4)
  --stores   which stores to run (default: sqlite, plus mysql when CAIRN_TEST_MYSQL_URL is set
             or MariaDB/MySQL answers on 127.0.0.1:3306 as root)

  restic     a full and a 1 %-changed incremental backup of a generated tree, through Cairn
             (control plane + agent + restic plugin) vs. restic alone, alternated A/B/B/A
  --size-mib size of the generated tree (default 1024)
  --repeat   how many times the A/B/B/A sequence runs (default 1)

  tenants    a quiet tenant's schedule fires, reads and the event-loop delay, alone and then
             beside a tenant at its quota limits (every schedule at the floor)
  --minutes  minutes measured per phase (default 3)

  schedules  the scheduler's catch-up of N user schedules after 12 h down vs. the same rows
             written bare through Kysely; event-loop delay; targets catch-up < 5 s, loop < 50 ms
  --schedules  how many user schedules (default 10000)
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

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      tasks: { type: 'string' },
      agents: { type: 'string' },
      stores: { type: 'string' },
      'size-mib': { type: 'string' },
      repeat: { type: 'string' },
      minutes: { type: 'string' },
      schedules: { type: 'string' },
    },
  });
} catch (err) {
  usage((err as Error).message);
}
const [benchmark, ...extra] = parsed.positionals;
if (benchmark !== 'dispatch' && benchmark !== 'restic' && benchmark !== 'tenants' && benchmark !== 'schedules')
  usage(benchmark ? `unknown benchmark "${benchmark}"` : 'which benchmark?');
if (extra.length > 0) usage(`unexpected arguments: ${extra.join(' ')}`);

let stores: Backend[] | undefined;
if (parsed.values.stores !== undefined) {
  const names = parsed.values.stores.split(',').map((s) => s.trim());
  const bad = names.filter((s) => s !== 'sqlite' && s !== 'mysql');
  if (bad.length > 0 || names.length === 0) usage(`--stores takes sqlite and/or mysql, got ${parsed.values.stores}`);
  stores = names as Backend[];
}

// Without this a Ctrl-C would leave a database (on MySQL) and agent state dirs behind.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    stopping = true;
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void Promise.allSettled([interrupted(), resticInterrupted(), tenantsInterrupted(), schedulesInterrupted()]).finally(
      () => process.exit(130),
    );
  });

try {
  if (benchmark === 'restic')
    await runResticBench({
      sizeMib: positiveInt('size-mib', parsed.values['size-mib'], 1024),
      repeat: positiveInt('repeat', parsed.values.repeat, 1),
    });
  else if (benchmark === 'schedules')
    await runSchedulesBench({
      schedules: positiveInt('schedules', parsed.values.schedules, 10_000),
      ...(stores ? { stores } : {}),
    });
  else if (benchmark === 'tenants')
    await runTenantsBench({ minutes: positiveInt('minutes', parsed.values.minutes, 3), ...(stores ? { stores } : {}) });
  else
    await runDispatchBench({
      tasks: positiveInt('tasks', parsed.values.tasks, 2000),
      agents: positiveInt('agents', parsed.values.agents, 4),
      stores,
    });
} catch (err) {
  if (stopping) await new Promise(() => {}); // the signal handler exits once it has cleaned up
  // Loud on purpose: a benchmark that lost or failed a task has no figures worth printing.
  process.stderr.write(`\nbench ${benchmark} FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
