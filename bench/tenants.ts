/**
 * The noisy-neighbour benchmark: what one tenant at its quota limits costs another.
 *
 * A quiet tenant has one instance with a user schedule firing every minute. Each store is measured
 * twice on one control plane, one phase right after the other: first the quiet tenant alone (the
 * baseline), then with a noisy tenant at its quota limits: as many instances and user schedules as
 * its quotas allow, every schedule at the offering's floor (once a minute), and as many backup jobs
 * with as many schedules each as allowed. In both phases the quiet tenant reads its instances and
 * tasks in a loop. Read per phase:
 *
 * - how late each of the quiet tenant's fires came (task createdAt minus its minute), and fires
 *   that made no task;
 * - the quiet tenant's read latencies (p50, p99);
 * - the control plane's event-loop delay (p99 and max of each /metrics window).
 *
 * The ratios noisy/baseline are the figures to compare between commits; the absolute figures are
 * checked against what the service promises (fires within 2 s, reads p99 under 500 ms, event-loop
 * delay p99 under 50 ms) and printed with a verdict.
 */
import { Api } from '@cairn/test-harness/api';
import { freshDatabase, type Backend, type TestDatabase } from '@cairn/test-harness/databases';
import { latencyFigures, type LatencyFigures } from '@cairn/test-harness/latency';
import {
  enrollAgent,
  startAgent,
  startControlPlane,
  type ControlPlaneProc,
  type Proc,
} from '@cairn/test-harness/processes';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuWindow, pidsNamed } from './cpu.js';
import { findMysql, FOREIGN_LIMIT_PCT } from './common.js';

const ZONE = 'bench-zone';
/** The offering's floor, the lowest allowed: the noisy tenant's schedules fire once a minute. */
const FLOOR_S = 60;
const MINUTE_MS = 60_000;
/** What the service promises the quiet tenant while a noisy one is at its limits. */
const PROMISE = { fireLateMs: 2000, readP99Ms: 500, loopP99Ms: 50 };

export interface TenantsOptions {
  stores?: Backend[];
  /** How long each phase measures, in minutes (each minute is one fire of the quiet tenant). */
  minutes: number;
}

interface Phase {
  /** Per fire of the quiet tenant's schedule: ms after its minute that its task was created. */
  fireLateMs: number[];
  /** Minutes in the phase whose fire made no task of the quiet tenant. */
  firesWithoutTask: number;
  reads: LatencyFigures;
  /** The worst p99 and max of event-loop delay over the phase's /metrics windows, ms. */
  loopP99Ms: number;
  loopMaxMs: number;
  /** Backup tasks created meanwhile, every tenant. */
  tasksCreated: number;
  /** CPU share of the machine taken by processes outside the bench meanwhile (null off Linux). */
  foreignPct: number | null;
}

interface StoreResult {
  store: Backend;
  noisy: { instances: number; userSchedules: number; jobs: number; jobSchedules: number };
  baseline: Phase;
  loaded: Phase;
  ratios: { readP99: number; loopP99: number; fireLateMax: number };
  promiseKept: boolean;
  /** Other processes took more than FOREIGN_LIMIT_PCT of the machine in a phase: do not quote. */
  disturbed: boolean;
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

let running: { cp?: ControlPlaneProc; agent?: Proc; db?: TestDatabase } = {};

/** Ctrl-C: stop the processes and drop the database. */
export async function tenantsInterrupted(): Promise<void> {
  await running.agent?.stop();
  await running.cp?.proc.stop();
  await running.db?.drop();
}

/** A call that waits out the control plane's 429s (the noisy tenant's setup is a burst). */
async function call(api: Api, want: number, method: string, path: string, body?: unknown): Promise<any> {
  for (;;) {
    const res = await api.call(method, path, body);
    if (res.status === want) return res.body;
    if (res.status === 429) {
      await sleep(Number(res.headers.get('retry-after') ?? '1') * 1000);
      continue;
    }
    throw new Error(`${method} ${path}: expected ${want}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Runs `fn(0..n-1)`, `limit` at a time. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function metricsText(cp: ControlPlaneProc): Promise<string> {
  return (await fetch(`${cp.url}/metrics`)).text();
}

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

async function backupTasksCreated(admin: Api, since: number): Promise<{ instanceId: string; createdAt: number }[]> {
  const out: { instanceId: string; createdAt: number }[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await call(
      admin,
      200,
      'GET',
      `/v1/tasks?kind=backup&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    let older = false;
    for (const t of page.items as { instanceId: string; createdAt: string }[]) {
      const at = Date.parse(t.createdAt);
      if (at < since) older = true;
      else out.push({ instanceId: t.instanceId, createdAt: at });
    }
    cursor = older ? null : page.nextCursor;
  } while (cursor);
  return out;
}

/** Measures whole minutes: from just after one minute starts to just after the last one's fire. */
async function measure(
  cp: ControlPlaneProc,
  agent: Proc,
  admin: Api,
  quiet: Api,
  quietInstance: string,
  minutes: number,
): Promise<Phase> {
  // Start 5 s into a minute, so the first fire counted is the next minute's.
  const now = Date.now();
  const start = Math.ceil((now - 5000) / MINUTE_MS) * MINUTE_MS + 5000;
  await sleep(start - now);
  const end = start + minutes * MINUTE_MS;
  await metricsText(cp); // resets the event-loop histogram: windows start here
  const cpu = cpuWindow({
    bench: [process.pid],
    controlPlane: [cp.proc.child.pid],
    agent: [agent.child.pid],
    database: pidsNamed('mariadbd', 'mysqld'),
  });
  const reads: number[] = [];
  let loopP99Ms = 0;
  let loopMaxMs = 0;
  const readLoop = (async () => {
    while (Date.now() < end) {
      const started = performance.now();
      await call(quiet, 200, 'GET', '/v1/instances?limit=50');
      await call(quiet, 200, 'GET', `/v1/tasks?instanceId=${quietInstance}&limit=20`);
      reads.push((performance.now() - started) / 2);
      await sleep(100);
    }
  })();
  const scrapeLoop = (async () => {
    while (Date.now() < end) {
      await sleep(5000);
      const text = await metricsText(cp);
      loopP99Ms = Math.max(loopP99Ms, gauge(text, 'cairn_process_nodejs_eventloop_lag_p99_seconds') * 1000);
      loopMaxMs = Math.max(loopMaxMs, gauge(text, 'cairn_process_nodejs_eventloop_lag_max_seconds') * 1000);
    }
  })();
  await Promise.all([readLoop, scrapeLoop]);
  const foreignPct = cpu()?.foreignPct ?? null;
  // The last minute's fire lands in the window's last 5 s.
  const tasks = await backupTasksCreated(admin, start);
  const quietFires = tasks.filter((t) => t.instanceId === quietInstance && t.createdAt < end);
  const fireLateMs = quietFires.map((t) => t.createdAt - Math.floor(t.createdAt / MINUTE_MS) * MINUTE_MS);
  return {
    fireLateMs,
    firesWithoutTask: Math.max(0, minutes - quietFires.length),
    reads: latencyFigures(reads),
    loopP99Ms: Math.round(loopP99Ms * 10) / 10,
    loopMaxMs: Math.round(loopMaxMs * 10) / 10,
    tasksCreated: tasks.filter((t) => t.createdAt < end).length,
    foreignPct: foreignPct === null ? null : Math.round(foreignPct * 10) / 10,
  };
}

async function runStore(store: Backend, minutes: number): Promise<StoreResult> {
  const db = await freshDatabase(store);
  running.db = db;
  const cp = await startControlPlane({
    databaseUrl: db.url,
    dataDir: db.dataDir,
    // The real clock and the default tick: fire times are what is measured.
    env: { CAIRN_SCHEDULER_TICK_MS: '1000' },
  });
  running.cp = cp;
  try {
    const admin = new Api(cp.url, cp.adminToken);
    const { stateDir } = await enrollAgent(cp, ZONE, 'bench-agent');
    const agent = await startAgent(stateDir, { slots: 8 });
    running.agent = agent;
    const provider = await call(admin, 201, 'POST', `/v1/zones/${ZONE}/providers`, {
      name: 'dummy',
      plugin: '@cairn/plugin-dummy',
      config: {},
      credentials: { secret: 's3cret' },
      tenantLocators: 'any',
    });
    const offering = await call(admin, 201, 'POST', '/v1/offerings', {
      name: 'bronze',
      zone: ZONE,
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: true,
      minUserScheduleIntervalS: FLOOR_S,
    });
    const tenant = async (name: string) => {
      const t = await call(admin, 201, 'POST', '/v1/tenants', { name });
      await call(admin, 201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId: t.id });
      const token = await call(admin, 201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name });
      return { id: t.id as string, api: new Api(cp.url, token.token as string) };
    };
    const instance = async (api: Api, name: string) => {
      const i = await call(api, 201, 'POST', '/v1/instances', { name, zone: ZONE, locator: { vm: name } });
      await call(api, 200, 'PUT', `/v1/instances/${i.id}/offering`, { offeringId: offering.id });
      return i.id as string;
    };
    const quiet = await tenant('quiet');
    const quietInstance = await instance(quiet.api, 'quiet-vm');
    await call(quiet.api, 200, 'PUT', `/v1/instances/${quietInstance}/schedule`, {
      cron: '* * * * *',
      timezone: 'UTC',
      keepLast: 3,
    });

    log(`${store}: baseline, the quiet tenant alone, ${minutes} min`);
    const baseline = await measure(cp, agent, admin, quiet.api, quietInstance, minutes);

    const noisy = await tenant('noisy');
    const quotas = await call(noisy.api, 200, 'GET', `/v1/tenants/${noisy.id}/quotas`);
    const limit = (q: string) => Number(quotas[q].limit);
    const n = {
      instances: limit('instances'),
      userSchedules: Math.min(limit('userSchedules'), limit('instances')),
      jobs: limit('jobs'),
      jobSchedules: limit('schedulesPerJob'),
    };
    log(
      `${store}: the noisy tenant at its limits: ${n.instances} instances, ${n.userSchedules} user schedules, ` +
        `${n.jobs} jobs × ${n.jobSchedules} schedules, all once a minute`,
    );
    const ids: string[] = new Array(n.instances);
    await pool(n.instances, 8, async (i) => {
      ids[i] = await instance(noisy.api, `noisy-${i}`);
      if (i < n.userSchedules)
        await call(noisy.api, 200, 'PUT', `/v1/instances/${ids[i]}/schedule`, {
          cron: '* * * * *',
          timezone: 'UTC',
          keepLast: 1,
        });
    });
    const membersPerJob = Math.max(1, Math.floor(n.instances / n.jobs));
    await pool(n.jobs, 4, async (j) => {
      await call(noisy.api, 201, 'POST', '/v1/backup-jobs', {
        name: `noisy-job-${j}`,
        instanceIds: ids.slice(j * membersPerJob, (j + 1) * membersPerJob),
        mode: 'INCREMENT',
        execution: 'PARALLEL',
        priority: 49,
        // Each schedule its own second of the minute: all fire, once a minute each.
        schedules: Array.from({ length: n.jobSchedules }, (_, s) => ({ cron: `${s} * * * * *`, timezone: 'UTC' })),
      });
    });

    log(`${store}: loaded, the quiet tenant beside the noisy one, ${minutes} min`);
    const loaded = await measure(cp, agent, admin, quiet.api, quietInstance, minutes);
    const ratio = (a: number, b: number) => Math.round((a / Math.max(b, 0.1)) * 100) / 100;
    const lateMax = (p: Phase) => Math.max(0, ...p.fireLateMs);
    const promiseKept =
      loaded.firesWithoutTask === 0 &&
      lateMax(loaded) <= PROMISE.fireLateMs &&
      loaded.reads.p99 < PROMISE.readP99Ms &&
      loaded.loopP99Ms < PROMISE.loopP99Ms;
    return {
      store,
      noisy: n,
      baseline,
      loaded,
      ratios: {
        readP99: ratio(loaded.reads.p99, baseline.reads.p99),
        loopP99: ratio(loaded.loopP99Ms, baseline.loopP99Ms),
        fireLateMax: ratio(lateMax(loaded), lateMax(baseline)),
      },
      promiseKept,
      disturbed: Math.max(baseline.foreignPct ?? 0, loaded.foreignPct ?? 0) > FOREIGN_LIMIT_PCT,
    };
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    const state = cp.proc.running ? 'running' : `exited code=${cp.proc.exitCode} signal=${cp.proc.signal}`;
    throw new Error(
      `${(err as Error).message}${cause ? ` (${String(cause)})` : ''}; control plane ${state}, last lines:\n` +
        `${cp.proc.lines.slice(-10).join('\n')}\n${cp.proc.stderr.slice(-10).join('\n')}`,
    );
  } finally {
    await running.agent?.stop();
    await cp.proc.stop();
    await db.drop();
    running = {};
  }
}

export async function runTenantsBench(opts: TenantsOptions): Promise<void> {
  const stores: Backend[] = [];
  if (!opts.stores || opts.stores.includes('sqlite')) stores.push('sqlite');
  if (!opts.stores || opts.stores.includes('mysql')) {
    const mysql = await findMysql(opts.stores !== undefined);
    if ('skipped' in mysql) log(`skipped mysql: ${mysql.skipped}`);
    else stores.push('mysql');
  }
  const results: StoreResult[] = [];
  for (const store of stores) results.push(await runStore(store, opts.minutes));
  for (const r of results) {
    const late = (p: Phase) => `fires late by ${p.fireLateMs.join(', ')} ms (${p.firesWithoutTask} without a task)`;
    const reads = (p: Phase) => `reads p50 ${p.reads.p50} ms, p99 ${p.reads.p99} ms over ${p.reads.count}`;
    const loop = (p: Phase) => `event-loop delay p99 ${p.loopP99Ms} ms, max ${p.loopMaxMs} ms`;
    for (const [name, p] of [
      ['baseline', r.baseline],
      ['loaded  ', r.loaded],
    ] as const)
      process.stdout.write(
        `${r.store} ${name}: ${late(p)}; ${reads(p)}; ${loop(p)}; ${p.tasksCreated} backup tasks; ` +
          `other processes ${p.foreignPct ?? '?'} % of the machine\n`,
      );
    process.stdout.write(
      `${r.store} loaded/baseline: reads p99 ×${r.ratios.readP99}, event-loop p99 ×${r.ratios.loopP99}, ` +
        `latest fire ×${r.ratios.fireLateMax}; promise (fires ≤ ${PROMISE.fireLateMs} ms late, reads p99 < ` +
        `${PROMISE.readP99Ms} ms, event-loop p99 < ${PROMISE.loopP99Ms} ms): ${r.promiseKept ? 'kept' : 'BROKEN'}\n`,
    );
    if (r.disturbed)
      process.stdout.write(
        `WARNING ${r.store}: other processes took more than ${FOREIGN_LIMIT_PCT} % of the machine: do not quote\n`,
      );
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'tenants', at: new Date().toISOString(), results })}\n`);
}
