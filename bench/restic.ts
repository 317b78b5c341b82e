/**
 * restic benchmark: a full backup of a generated tree, then an increment after 1 % of it
 * changed, through Cairn (HTTP → control plane → agent → restic plugin → restic) versus
 * `restic backup` run directly by this process on the same data into a separate repository.
 * The arms alternate A/B/B/A in one run on one machine, so drift in the machine's load falls on
 * both; the figures worth reading are the ratio of full backups and the fixed cost Cairn adds to
 * an increment. See docs/performance.md.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { childrenCpuSec, cpuWindow } from './cpu.js';
import { Api } from '@cairn/test-harness/api';
import { freshDatabase } from '@cairn/test-harness/databases';
import { seededRandom } from '@cairn/test-harness/random';
import { enrollAgent, root, startAgent, startControlPlane, tempDir, type Proc } from '@cairn/test-harness/processes';
import { assignOffering } from '@cairn/test-harness/scenario';

export interface ResticBenchOptions {
  /** Size of the generated tree. */
  sizeMib: number;
  /** How many times the A/B/B/A sequence runs (more rounds, less noise). */
  repeat: number;
}

/** The agent ships the restic plugin. */
const RESTIC_PLUGIN = '@cairn/plugin-restic';
const PASSWORD = 'bench-restic-password';
const ZONE = 'bench';
/** Share of the tree's bytes in small files (1–64 KiB, 200 a directory); the rest in four large ones. */
const SMALL_SHARE = 0.6;
const LARGE_FILES = 4;
const CHANGED_SHARE = 0.01;
const POLL_MS = 500;
const ORDER = ['cairn', 'restic', 'restic', 'cairn'] as const;
type Arm = (typeof ORDER)[number];
/** How long Cairn's own CPU is measured with nothing to do, before the rounds. */
const IDLE_MS = 10_000;

/** The production timings the dispatch bench uses too (the harness shortens them for tests). */
const CONTROL_PLANE_ENV = {
  CAIRN_HEARTBEAT_MS: '5000',
  CAIRN_TASK_LEASE_MS: '60000',
  CAIRN_DISPATCH_POLL_MS: '1000',
  CAIRN_LOG_LEVEL: 'info',
};

const log = (msg: string) => process.stderr.write(`[bench restic] ${msg}\n`);

interface PlannedFile {
  rel: string;
  size: number;
}

/** The files of the tree: many small ones in directories of 200, a few large ones. */
function planTree(sizeMib: number, seed: number): PlannedFile[] {
  const total = sizeMib * 1024 * 1024;
  const rand = seededRandom(seed);
  const files: PlannedFile[] = [];
  let small = 0;
  while (small < total * SMALL_SHARE) {
    const size = 1024 + Math.floor(rand() * 63 * 1024);
    files.push({ rel: path.join(`d${Math.floor(files.length / 200)}`, `f${files.length}.dat`), size });
    small += size;
  }
  const large = Math.floor((total - small) / LARGE_FILES);
  for (let i = 0; i < LARGE_FILES; i++) files.push({ rel: path.join('large', `blob-${i}.bin`), size: large });
  return files;
}

/**
 * Writes one file's content: an AES-CTR keystream keyed by the seed, the generation and the
 * file's path, so it is incompressible, reproducible, and new in every generation.
 */
function writeContent(dir: string, file: PlannedFile, seed: number, generation: number): void {
  const key = createHash('sha256').update(`${seed}/${generation}/${file.rel}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const target = path.join(dir, file.rel);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const fd = fs.openSync(target, 'w');
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  try {
    for (let left = file.size; left > 0; left -= chunk.length) {
      fs.writeSync(fd, cipher.update(left >= chunk.length ? chunk : chunk.subarray(0, left)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The small files rewritten for the increment: about 1 % of the tree's bytes, chosen by the seed. */
function planChange(files: PlannedFile[], seed: number): PlannedFile[] {
  const total = files.reduce((n, f) => n + f.size, 0);
  const rand = seededRandom(seed + 1);
  const small = files.filter((f) => !f.rel.startsWith('large'));
  const picked = new Set<PlannedFile>();
  let bytes = 0;
  while (bytes < total * CHANGED_SHARE && picked.size < small.length) {
    const f = small[Math.floor(rand() * small.length)]!;
    if (picked.has(f)) continue;
    picked.add(f);
    bytes += f.size;
  }
  return [...picked];
}

function resticEnv(repo: string): NodeJS.ProcessEnv {
  return { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD };
}

function runRestic(repo: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('restic', args, { env: resticEnv(repo), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`restic ${args[0]} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

interface Measured {
  wallMs: number;
  /** CPU seconds of the restic process(es). */
  resticCpuSec: number | null;
  /** CPU seconds of the control plane and the agent (Cairn arm only). */
  cairnCpuSec: number | null;
  /** The same, by process, user and system apart. */
  cpu?: Record<string, { userSec: number; systemSec: number }>;
}

interface Round {
  arm: Arm;
  full: Measured;
  incremental: Measured;
}

interface Cairn {
  api: Api;
  cp: Proc;
  agent: Proc;
  agentId: string;
  stop(): Promise<void>;
}

/** Cairn on SQLite with one restic agent, allowed to back up below `roots`. */
async function startCairn(roots: string): Promise<Cairn> {
  const db = await freshDatabase('sqlite');
  const cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, env: CONTROL_PLANE_ENV });
  const api = new Api(cp.url, cp.adminToken);
  const { stateDir, agentId } = await enrollAgent(cp, ZONE, 'bench-restic');
  const agent = await startAgent(stateDir, { plugins: RESTIC_PLUGIN, slots: 2, args: ['--roots', roots] });
  return {
    api,
    cp: cp.proc,
    agent,
    agentId,
    async stop() {
      await agent.stop();
      await cp.proc.stop();
      await db.drop();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls the task every POLL_MS until it ended. Rarely on purpose: each poll is a request the
 * control plane serves on the cores restic runs on, and the wall time comes from the task's own
 * stamps, not from when the poll saw it end.
 */
async function untilEnded(api: Api, id: string): Promise<{ state: string; error: unknown }> {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const task = await api.expect<{ state: string; error: unknown }>(200, 'GET', `/v1/tasks/${id}`);
    if (['succeeded', 'failed', 'cancelled', 'lost'].includes(task.state)) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} did not end within 30 minutes`);
    await sleep(POLL_MS);
  }
}

/** One backup through the API; wall time is the task's own createdAt → endedAt, as stored. */
async function cairnBackup(c: Cairn, instanceId: string, mode: 'FULL' | 'INCREMENT'): Promise<Measured> {
  const window = cpuWindow({ controlPlane: [c.cp.child.pid], agent: [c.agent.child.pid] });
  const resticBefore = childrenCpuSec(c.agent.child.pid!);
  const started = await c.api.expect<{ id: string }>(202, 'POST', `/v1/instances/${instanceId}/backups`, { mode });
  const done = await untilEnded(c.api, started.id);
  const cpu = window();
  const resticAfter = childrenCpuSec(c.agent.child.pid!);
  if (done.state !== 'succeeded')
    throw new Error(`the ${mode} backup ended ${done.state}: ${JSON.stringify(done.error)}`);
  const task = await c.api.expect<{ createdAt: string; endedAt: string }>(200, 'GET', `/v1/tasks/${started.id}`);
  const sec = (g: { userSec: number; systemSec: number } | undefined) => (g ? g.userSec + g.systemSec : 0);
  return {
    wallMs: Date.parse(task.endedAt) - Date.parse(task.createdAt),
    resticCpuSec: resticBefore === null || resticAfter === null ? null : resticAfter - resticBefore,
    cairnCpuSec: cpu ? sec(cpu.byGroup['controlPlane']) + sec(cpu.byGroup['agent']) : null,
    ...(cpu ? { cpu: cpu.byGroup } : {}),
  };
}

async function directBackup(repo: string, data: string): Promise<Measured> {
  const before = childrenCpuSec('self');
  const t0 = performance.now();
  await runRestic(repo, ['backup', '--json', '--tag', 'cairn-instance=direct', '--', data]);
  const wallMs = performance.now() - t0;
  const after = childrenCpuSec('self');
  return { wallMs, resticCpuSec: before === null || after === null ? null : after - before, cairnCpuSec: null };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (n: number | null, digits = 1) => (n === null ? 'n/a' : n.toFixed(digits));

/** What a run cut short by Ctrl-C or SIGTERM must still do: stop Cairn, remove the tree and repositories. */
let cleanup: (() => Promise<void>) | undefined;

export async function resticInterrupted(): Promise<void> {
  await cleanup?.();
}

export async function runResticBench(opts: ResticBenchOptions): Promise<void> {
  const seed = 20260101;
  const work = tempDir('bench-restic');
  const data = path.join(work, 'data');
  const files = planTree(opts.sizeMib, seed);
  const changed = planChange(files, seed);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  log(
    `generating ${files.length} files, ${(totalBytes / 1024 ** 2).toFixed(0)} MiB (${changed.length} change for the increment)`,
  );
  for (const f of files) writeContent(data, f, seed, 1);
  let cairn: Cairn | undefined;
  let cleaning: Promise<void> | undefined;
  cleanup = () =>
    (cleaning ??= (async () => {
      await cairn?.stop();
      fs.rmSync(work, { recursive: true, force: true });
    })());
  const rounds: Round[] = [];
  let idleCpuPerSec: number | null = null;
  try {
    cairn = await startCairn(work);
    // What the control plane and the agent cost doing nothing (heartbeats, dispatch polls).
    const idle = cpuWindow({ cairn: [cairn.cp.child.pid, cairn.agent.child.pid] });
    await sleep(IDLE_MS);
    const idleUse = idle()?.byGroup['cairn'];
    idleCpuPerSec = idleUse ? (idleUse.userSec + idleUse.systemSec) / (IDLE_MS / 1000) : null;
    const order = Array.from({ length: opts.repeat }, () => ORDER).flat();
    for (const [i, arm] of order.entries()) {
      // Every round starts from the same tree (generation 1) and a repository the operator made.
      for (const f of changed) writeContent(data, f, seed, 1);
      const repo = path.join(work, `repo-${i}`);
      await runRestic(repo, ['init']);
      let full: Measured;
      let incremental: Measured;
      if (arm === 'cairn') {
        const provider = await cairn.api.expect<{ id: string }>(201, 'POST', `/v1/zones/${ZONE}/providers`, {
          name: `restic-${i}`,
          plugin: '@cairn/plugin-restic',
          endpoint: repo,
          credentials: { password: PASSWORD },
        });
        const offering = await cairn.api.expect<{ id: string }>(201, 'POST', '/v1/offerings', {
          name: `restic-${i}`,
          zone: ZONE,
          providerId: provider.id,
          allowAdhoc: true,
          allowUserSchedules: false,
        });
        const instance = await cairn.api.expect<{ id: string }>(201, 'POST', '/v1/instances', {
          name: `tree-${i}`,
          zone: ZONE,
          locator: { paths: [data] },
          agentId: cairn.agentId,
        });
        await assignOffering(cairn.api, instance.id, offering.id);
        full = await cairnBackup(cairn, instance.id, 'FULL');
        for (const f of changed) writeContent(data, f, seed, 2);
        incremental = await cairnBackup(cairn, instance.id, 'INCREMENT');
      } else {
        full = await directBackup(repo, data);
        for (const f of changed) writeContent(data, f, seed, 2);
        incremental = await directBackup(repo, data);
      }
      log(`${arm}: full ${fmt(full.wallMs / 1000, 2)} s, increment ${fmt(incremental.wallMs, 0)} ms`);
      rounds.push({ arm, full, incremental });
      fs.rmSync(repo, { recursive: true, force: true });
    }
  } finally {
    await cleanup();
  }

  const of = (arm: Arm) => rounds.filter((r) => r.arm === arm);
  const avg = (arm: Arm, pick: (r: Round) => number | null) => {
    const xs = of(arm).map(pick);
    return xs.some((x) => x === null) ? null : mean(xs as number[]);
  };
  const fullRatio = avg('cairn', (r) => r.full.wallMs)! / avg('restic', (r) => r.full.wallMs)!;
  const incrOverheadMs = avg('cairn', (r) => r.incremental.wallMs)! - avg('restic', (r) => r.incremental.wallMs)!;
  const rows = rounds.map(
    (r, i) =>
      `| ${i + 1} | ${r.arm} | ${fmt(r.full.wallMs / 1000, 2)} | ${fmt(r.full.resticCpuSec)} | ${fmt(r.full.cairnCpuSec, 2)} | ${fmt(r.incremental.wallMs, 0)} | ${fmt(r.incremental.resticCpuSec, 2)} | ${fmt(r.incremental.cairnCpuSec, 2)} |`,
  );
  const summary = {
    sizeMib: opts.sizeMib,
    files: files.length,
    changedFiles: changed.length,
    fullRatio,
    incrementOverheadMs: incrOverheadMs,
    idleCairnCpuSecPerSec: idleCpuPerSec,
    machine: { cpus: os.cpus().length, load: os.loadavg() },
    rounds,
  };
  const out = [
    `restic bench: ${files.length} files, ${opts.sizeMib} MiB, increment after ${changed.length} files (${CHANGED_SHARE * 100} %) changed; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs`,
    '',
    '| round | arm | full s | full restic CPU s | full Cairn CPU s | incr ms | incr restic CPU s | incr Cairn CPU s |',
    '| ----- | --- | ------ | ----------------- | ---------------- | ------- | ----------------- | ---------------- |',
    ...rows,
    '',
    `full backup: Cairn / restic alone = ${fullRatio.toFixed(3)} (goal <= 1.02)`,
    `increment: Cairn - restic alone = ${incrOverheadMs.toFixed(0)} ms (goal <= 200 ms)`,
    `Cairn idle (control plane + agent): ${fmt(idleCpuPerSec === null ? null : idleCpuPerSec * 1000, 0)} ms CPU a second`,
  ].join('\n');
  process.stdout.write(`${out}\n`);
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `restic-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(summary, null, 2));
  log(`wrote ${path.relative(root, file)}`);
}
