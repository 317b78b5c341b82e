/**
 * B2 idle agents: N agents (default 10,000) connected to one control plane and doing nothing but
 * heartbeats. The agents are created through the real API (an enrollment token each, spent at
 * POST /v1/agents/enroll: two requests per agent); P child processes (bench/idle-clients.ts)
 * hold N/P sessions each with the real protocol and codec. Measured:
 *
 * - the control plane's RSS and V8 heap before and after connecting, each after two full garbage
 *   collections (`settledRssKiB`) → KB per agent;
 * - its CPU over S seconds (default 30) with every agent connected → % of a core;
 * - every agent still connected at the end (`cairn_agent_sessions` in /metrics, and no child
 *   saw a session close).
 *
 * Baseline in the same run: a bare `ws` server (bench/bare-ws-server.ts, a child process like the
 * control plane) holding the same N sessions, twice (the A/A band) → KB per connection and idle
 * CPU. Targets: ≤ 20 KB per agent, idle CPU ≤ 5 % of a core.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend } from '@cairn/test-harness/databases';
import { tempDir, type Proc } from '@cairn/test-harness/processes';
import {
  band,
  bandText,
  diagnostics,
  disturbance,
  log,
  metric,
  pool,
  settledRssKiB,
  startChild,
  startStack,
  writeResults,
  ZONE,
  type Band,
} from './common.js';
import { cpuWindow, type CpuUse } from './cpu.js';

export interface IdleAgentsOptions {
  agents: number;
  /** Child processes holding the sessions. */
  procs: number;
  seconds: number;
  store: Backend;
}

const TARGET = { kbPerAgent: 20, idleCpuPct: 5 };
/** The interval the bare server's welcome tells (bench/bare-ws-server.ts): CAIRN_HEARTBEAT_MS's default. */
const BARE_HEARTBEAT_S = 5;
/** µs of CPU per heartbeat, from % of a core and heartbeats a second. */
const perBeatUs = (cpuPct: number, perSecond: number) => (((cpuPct / 100) * 1e6) / perSecond).toFixed(0);
/** Lets the sessions' first heartbeats and the GC settle before memory is read (at least; see hold). */
const SETTLE_MS = 6000;

interface Held {
  rssKbPerSession: number;
  heapKbPerSession: number | null;
  idleCpuPct: number;
  cpu: CpuUse | null;
  connectS: number;
  /** Heartbeats the server stored a second over the idle window (null: not counted, the bare server). */
  heartbeatsPerS: number | null;
  /** The idle heartbeat interval it told at the end of the window, in seconds (null: the bare server's fixed one). */
  paceS: number | null;
}

/**
 * Connects the agents of `credentials` to `url` from `procs` children, measures `pid`'s memory
 * before and after and its CPU over `seconds`, then checks that every session is still up.
 */
async function hold(
  url: string,
  credentials: string,
  opts: IdleAgentsOptions,
  pid: number,
  heap: () => Promise<number | null>,
  sessions: () => Promise<number | null>,
  /** The heartbeats stored so far and the interval told now (the control plane's metrics; null for the bare server). */
  beats: () => Promise<{ stored: number | null; paceS: number | null }>,
): Promise<Held> {
  const before = { rss: await settledRssKiB(pid), heap: await heap() };
  const per = Math.ceil(opts.agents / opts.procs);
  const children: Proc[] = [];
  try {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: opts.procs }, async (_, i) => {
        const from = i * per;
        const count = Math.min(per, opts.agents - from);
        if (count < 1) return;
        const c = await startChild('idle-clients.ts', [url, credentials, String(from), String(count)], {
          timeoutMs: 600_000,
        });
        children.push(c.proc);
        if (!c.ready.startsWith('ready ')) throw new Error(`idle clients: ${c.ready}`);
      }),
    );
    const connectS = (performance.now() - t0) / 1000;
    // Sessions welcomed while the fleet was smaller were told a faster pace; each hears the
    // fleet's on its next answered heartbeat. One whole interval of the fleet's pace (two: every
    // second heartbeat may go unanswered) and the window sees the pace a fleet of this size keeps.
    const { paceS } = await beats();
    await sleep(Math.max(SETTLE_MS, paceS === null ? 0 : 2 * paceS * 1000 + 2000));
    const after = { rss: await settledRssKiB(pid), heap: await heap() };
    const cpu = cpuWindow({ server: [pid], clients: children.map((c) => c.child.pid) });
    const beatsBefore = await beats();
    await sleep(opts.seconds * 1000);
    const use = cpu();
    const beatsAfter = await beats();
    const closed = children.flatMap((c) => c.lines.filter((l) => l.startsWith('closed ')));
    if (closed.length > 0)
      throw new Error(`${closed.length} sessions closed while idle, e.g. ${closed.slice(0, 3).join('; ')}`);
    const held = await sessions();
    if (held !== null && held !== opts.agents) throw new Error(`${held} sessions held at the end, not ${opts.agents}`);
    const s = use?.byGroup['server'];
    return {
      rssKbPerSession: ((after.rss ?? 0) - (before.rss ?? 0)) / opts.agents,
      heapKbPerSession:
        after.heap === null || before.heap === null ? null : (after.heap - before.heap) / 1024 / opts.agents,
      idleCpuPct: s ? (100 * (s.userSec + s.systemSec)) / opts.seconds : NaN,
      cpu: use,
      connectS,
      heartbeatsPerS:
        beatsAfter.stored === null || beatsBefore.stored === null
          ? null
          : (beatsAfter.stored - beatsBefore.stored) / opts.seconds,
      paceS: beatsAfter.paceS,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

/** Creates the agents through the API: an enrollment token each, spent as `cairn-agent enroll` does. */
async function enrollAll(url: string, token: string, n: number, file: string): Promise<number> {
  const post = async (p: string, body: unknown, auth: boolean) => {
    const res = await fetch(`${url}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`POST ${p}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
  const out: { agentId: string; credential: string; zone: string }[] = [];
  const t0 = performance.now();
  await pool(n, 16, async (i) => {
    const { token: enrollment } = await post('/v1/agent-enrollments', { zone: ZONE }, true);
    const a = await post('/v1/agents/enroll', { token: enrollment, name: `idle-${i}`, hostname: 'bench' }, false);
    out[i] = { agentId: a['agentId']!, credential: a['credential']!, zone: a['zone']! };
  });
  fs.writeFileSync(file, JSON.stringify(out));
  return (performance.now() - t0) / 1000;
}

export async function runIdleAgentsBench(opts: IdleAgentsOptions): Promise<void> {
  const startedAt = new Date();
  const dir = tempDir('bench-idle');
  const credentials = path.join(dir, 'credentials.json');
  const stack = await startStack(opts.store);
  const { cp } = stack;
  const scrape = async () => (await fetch(`${cp.url}/metrics`)).text();
  let real: Held;
  let enrollS: number;
  try {
    log(`${opts.store}: creating ${opts.agents} agents through the API`);
    enrollS = await enrollAll(cp.url, cp.adminToken, opts.agents, credentials);
    log(`${opts.store}: ${opts.procs} processes connect ${opts.agents} agents; then ${opts.seconds} s idle`);
    real = await hold(
      `${cp.url.replace(/^http/, 'ws')}/v1/agent`,
      credentials,
      opts,
      cp.proc.child.pid!,
      async () => metric(await scrape(), 'cairn_process_nodejs_heap_size_used_bytes'),
      async () => metric(await scrape(), 'cairn_agent_sessions'),
      async () => {
        const text = await scrape();
        return {
          stored: metric(text, 'cairn_agent_heartbeats_total'),
          // The agents hold no task: they beat at the idle interval.
          paceS: metric(text, 'cairn_agent_idle_heartbeat_interval_seconds'),
        };
      },
    );
  } catch (err) {
    throw new Error(`idle agents failed: ${(err as Error).message}\n${diagnostics(stack.procs)}`, { cause: err });
  } finally {
    await stack.cleanup();
  }

  const bare: Held[] = [];
  for (let i = 0; i < 2; i++) {
    log(`baseline ${i + 1}/2: a bare ws server holding ${opts.agents} sessions`);
    const server = await startChild('bare-ws-server.ts', []);
    try {
      bare.push(
        await hold(
          `ws://127.0.0.1:${server.ready.trim()}`,
          credentials,
          opts,
          server.proc.child.pid!,
          async () => null,
          async () => null,
          async () => ({ stored: null, paceS: null }),
        ),
      );
    } finally {
      await server.proc.stop();
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const kb: Band = band(bare.map((b) => b.rssKbPerSession));
  const cpuBand: Band = band(bare.map((b) => b.idleCpuPct));
  const { foreignPct, disturbed } = disturbance([real.cpu, ...bare.map((b) => b.cpu)]);
  const met = real.rssKbPerSession <= TARGET.kbPerAgent && real.idleCpuPct <= TARGET.idleCpuPct;
  await writeResults({
    benchmark: 'idle-agents',
    startedAt,
    title: `idle-agents: ${opts.agents} agents on one control plane (${opts.store}), ${opts.procs} client processes, ${opts.seconds} s idle`,
    options: { ...opts },
    head: ['server', 'RSS KB/session', 'heap KB/session', 'idle CPU % core', 'connect s', '÷ bare (RSS)', 'targets'],
    rows: [
      [
        'control plane',
        real.rssKbPerSession.toFixed(1),
        real.heapKbPerSession === null ? '?' : real.heapKbPerSession.toFixed(1),
        real.idleCpuPct.toFixed(1),
        real.connectS.toFixed(1),
        (real.rssKbPerSession / kb.median).toFixed(1),
        met ? 'MET' : 'MISSED',
      ],
      ...bare.map((b, i) => [
        `bare ws (${i + 1})`,
        b.rssKbPerSession.toFixed(1),
        '',
        b.idleCpuPct.toFixed(1),
        b.connectS.toFixed(1),
        '',
        '',
      ]),
    ],
    notes: [
      `agents created through the API (enrollment + enroll, 16 in flight) in ${enrollS.toFixed(1)} s`,
      `bare ws A/A: RSS ${bandText(kb, 1)} KB per session; idle CPU ${bandText(cpuBand, 1)} % of a core`,
      `memory read ${SETTLE_MS / 1000} s after the last session was welcomed; every session was still up after the idle window`,
      `heartbeats: the control plane told its ${opts.agents} agents, holding no task, to beat every ${real.paceS} s and stored ${real.heartbeatsPerS?.toFixed(0)} a second ` +
        `(${perBeatUs(real.idleCpuPct, real.heartbeatsPerS ?? NaN)} µs of CPU each); the bare server's clients beat every ${BARE_HEARTBEAT_S} s ` +
        `(${(opts.agents / BARE_HEARTBEAT_S).toFixed(0)} a second, ${perBeatUs(cpuBand.median, opts.agents / BARE_HEARTBEAT_S)} µs each, receiving only)`,
      `targets: ≤ ${TARGET.kbPerAgent} KB per agent (RSS), idle CPU ≤ ${TARGET.idleCpuPct} % of a core`,
    ],
    figures: {
      enrollS,
      real: { ...real, cpu: undefined },
      bare: bare.map((b) => ({ ...b, cpu: undefined })),
    },
    disturbed,
    foreignPct,
  });
}
