/**
 * B4 HTTP: autocannon (programmatic, in the bench process) against the control plane's API —
 * GET a task, list 50 backups, POST an ad-hoc backup — with the admin's bearer token, on each
 * store, and against a bare Hono hello on @hono/node-server (bench/hello-server.ts, a child
 * process like the control plane). The hello runs before and after the API targets: the two
 * runs are the A/A noise band, their median the baseline. Headline: API req/s ÷ hello req/s.
 * Target: authenticated reads ≥ 0.5× the hello on SQLite. `GET /healthz` (no token, no store) is
 * the control plane's own floor: what its server and the middleware every route passes through
 * cost. A last target GETs a task while another autocannon POSTs backups beside it: what a read
 * waits for while the store commits writes.
 */
import autocannon from 'autocannon';
import type { Backend } from '@cairn/test-harness/databases';
import { waitFor } from '@cairn/test-harness/wait';
import {
  band,
  chooseStores,
  diagnostics,
  disturbance,
  dummyInstances,
  log,
  startChild,
  startAgents,
  startStack,
  writeResults,
  type Band,
} from './common.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';

export interface HttpOptions {
  seconds: number;
  stores: Backend[] | undefined;
}

/** Keep-alive connections autocannon holds open: enough to keep one control-plane process busy. */
const CONNECTIONS = 10;
const BACKUPS = 50;
const READ_TARGET = 0.5;

interface Target {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  /** A read (counts against the ≥ 0.5× target, unless it runs beside writes). */
  read: boolean;
  /** Sent without the admin's token (a route that takes none). */
  anonymous?: boolean;
  /** Run at the same time, not measured in this row (it has its own). */
  beside?: Target;
}

interface Measured {
  store: Backend | 'hello';
  target: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  cpu: CpuUse | null;
  /** Measured beside another target: the server's CPU is the two targets' together. */
  shared?: boolean;
}

/** Runs autocannon; any error, timeout or unexpected status fails the run (no silent numbers). */
async function cannon(
  url: string,
  seconds: number,
  req: { method: 'GET' | 'POST'; headers?: Record<string, string>; expect: number },
): Promise<{ reqPerSec: number; p50Ms: number; p99Ms: number; requests: number }> {
  const statuses = new Map<number, number>();
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: req.method,
        connections: CONNECTIONS,
        duration: seconds,
        ...(req.headers ? { headers: req.headers } : {}),
      },
      (err, result) => (err ? reject(err as Error) : resolve(result)),
    );
    instance.on('response', (_client, status) => statuses.set(status, (statuses.get(status) ?? 0) + 1));
  });
  const wrong = [...statuses].filter(([s]) => s !== req.expect);
  if (r.errors > 0 || r.timeouts > 0 || wrong.length > 0 || r.requests.total === 0)
    throw new Error(
      `${req.method} ${url}: ${r.errors} errors, ${r.timeouts} timeouts, statuses ${JSON.stringify([...statuses])} ` +
        `(expected only ${req.expect})`,
    );
  return {
    reqPerSec: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    requests: r.requests.total,
  };
}

async function measureStore(store: Backend, opts: HttpOptions, helloPid: number): Promise<Measured[]> {
  const stack = await startStack(store);
  const { cp, api } = stack;
  try {
    // Setup, not timed: a dummy provider, an offering, an instance with 50 backups made by a real agent.
    const [instanceId] = await dummyInstances(api, 1, { durationMs: 0, steps: 1, sizeBytes: 1 });
    const [agent] = await startAgents(stack, 1, { slots: 1 });
    let taskId = '';
    for (let i = 0; i < BACKUPS; i++)
      taskId = (await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)).id;
    await waitFor(
      async () =>
        (await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=${BACKUPS}`)).items.length ===
        BACKUPS,
      `${BACKUPS} backups recorded`,
      120_000,
    );
    // No agent while measuring: the POSTed tasks stay queued and cost nothing but the request.
    await agent!.stop();

    // The control plane's floor: its server, request id and metrics; no token, no store, no validator.
    const floor: Target = {
      name: 'GET /healthz (no token, no store)',
      method: 'GET',
      path: '/healthz',
      read: false,
      anonymous: true,
    };
    const getTask: Target = { name: 'GET a task', method: 'GET', path: `/v1/tasks/${taskId}`, read: true };
    const list: Target = {
      name: `list ${BACKUPS} backups`,
      method: 'GET',
      path: `/v1/backups?instanceId=${instanceId}&limit=50`,
      read: true,
    };
    const post: Target = {
      name: 'POST ad-hoc backup',
      method: 'POST',
      path: `/v1/instances/${instanceId}/backups`,
      read: false,
    };
    const targets = [floor, getTask, list, post, { ...getTask, name: 'GET a task, POSTs beside', beside: post }];
    const out: Measured[] = [];
    for (const t of targets) {
      log(`${store}: ${t.name} for ${opts.seconds} s`);
      const cpu = cpuWindow({
        'control plane': [cp.proc.child.pid],
        bench: [process.pid],
        hello: [helloPid],
        ...(store === 'mysql' ? { 'database server': pidsNamed('mariadbd', 'mysqld') } : {}),
      });
      const run = (x: Target) =>
        cannon(`${cp.url}${x.path}`, opts.seconds, {
          method: x.method,
          ...(x.anonymous ? {} : { headers: { authorization: `Bearer ${cp.adminToken}` } }),
          expect: x.method === 'GET' ? 200 : 202,
        });
      const [r, beside] = await Promise.all([run(t), t.beside && run(t.beside)]);
      const c = cpu();
      out.push({ store, target: t.name, ...r, cpu: c, shared: Boolean(beside) });
      if (beside) out.push({ store, target: `(${t.beside!.name} beside it)`, ...beside, cpu: c, shared: true });
      if (!cp.proc.running) throw new Error('the control plane exited during the run');
    }
    return out;
  } catch (err) {
    throw new Error(`http on ${store} failed: ${(err as Error).message}\n${diagnostics(stack.procs)}`, { cause: err });
  } finally {
    await stack.cleanup();
  }
}

export async function runHttpBench(opts: HttpOptions): Promise<void> {
  const startedAt = new Date();
  const stores = await chooseStores(opts.stores);
  const hello = await startChild('hello-server.ts', []);
  const helloPid = hello.proc.child.pid!;
  const helloUrl = `http://127.0.0.1:${hello.ready.trim()}/`;
  const measured: Measured[] = [];
  try {
    const helloRun = async () => {
      log(`hello for ${opts.seconds} s`);
      const cpu = cpuWindow({ bench: [process.pid], hello: [helloPid] });
      const r = await cannon(helloUrl, opts.seconds, { method: 'GET', expect: 200 });
      measured.push({ store: 'hello', target: 'hello', ...r, cpu: cpu() });
    };
    await helloRun();
    for (const s of stores) measured.push(...(await measureStore(s.store, opts, helloPid)));
    await helloRun();
  } finally {
    await hello.proc.stop();
  }

  const helloBand: Band = band(measured.filter((m) => m.store === 'hello').map((m) => m.reqPerSec));
  const rows = measured.map((m) => ({ ...m, ratio: m.reqPerSec / helloBand.median }));
  const { foreignPct, disturbed } = disturbance(measured.map((m) => m.cpu));
  const sqliteReads = rows.filter(
    (r) => r.store === 'sqlite' && (r.target === 'GET a task' || r.target === `list ${BACKUPS} backups`),
  );
  const met = sqliteReads.length > 0 && sqliteReads.every((r) => r.ratio >= READ_TARGET);
  const cpuOf = (c: CpuUse | null, group: string) => {
    const g = c?.byGroup[group];
    return g ? (g.userSec + g.systemSec).toFixed(1) : '';
  };
  const perRequest = (c: CpuUse | null, group: string, requests: number) => {
    const g = c?.byGroup[group];
    return g && requests > 0 ? (((g.userSec + g.systemSec) * 1e6) / requests).toFixed(0) : '';
  };
  await writeResults({
    benchmark: 'http',
    startedAt,
    title: `http: autocannon, ${CONNECTIONS} connections, ${opts.seconds} s per target; stores: ${stores.map((s) => `${s.store} (${s.version})`).join(', ')}`,
    options: { ...opts, connections: CONNECTIONS },
    head: ['store', 'target', 'req/s', '÷ hello', 'p50 ms', 'p99 ms', 'CPU s (server)', 'server CPU µs/req'],
    rows: rows.map((r) => [
      r.store,
      r.target,
      r.reqPerSec.toFixed(0),
      r.store === 'hello' ? '' : r.ratio.toFixed(2),
      r.p50Ms.toFixed(1),
      r.p99Ms.toFixed(1),
      cpuOf(r.cpu, r.store === 'hello' ? 'hello' : 'control plane'),
      r.shared ? '' : perRequest(r.cpu, r.store === 'hello' ? 'hello' : 'control plane', r.requests),
    ]),
    notes: [
      `hello A/A: ${helloBand.runs.map((x) => x.toFixed(0)).join(' / ')} req/s, spread ${helloBand.spreadPct.toFixed(1)} %: ratios that differ by less are noise`,
      '÷ hello: req/s over the median of the two hello runs (before and after the API targets)',
      `target: authenticated reads on SQLite ≥ ${READ_TARGET}× the hello: ${met ? 'MET' : 'MISSED'}`,
      'the POSTed backups stay queued (no agent is connected while measuring)',
      'GET a task, POSTs beside: both autocannons at once, each with its own connections; its ratio is not a target (the two share the control plane, so no CPU a request is given)',
      "server CPU µs/req: the server process's user + system CPU over the target's window ÷ its requests",
    ],
    figures: { stores, hello: helloBand, measured: rows, readTargetMet: met },
    disturbed,
    foreignPct,
  });
}
