import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchTrusting, type TestCertificate } from './tls.js';
import { waitFor } from './wait.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CP_BIN = path.join(root, 'packages/control-plane/dist/main.js');
const AGENT_BIN = path.join(root, 'packages/agent/dist/main.js');

function bin(file: string): string {
  if (!fs.existsSync(file))
    throw new Error(`${path.relative(root, file)} is missing: run the suite with "npx pnpm@10 test" (it builds first)`);
  return file;
}

/** A child process whose output is kept, line by line, for assertions. */
/** The resident set of process `pid`, in bytes (Linux: /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export class Proc {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  /** Why the process could not be started or signalled (ChildProcess 'error'), if it could not. */
  spawnError: Error | undefined;
  private readonly startedAt = performance.now();
  private readonly exited: Promise<void>;
  /** Set once the harness stops or kills the process. */
  private stopping = false;

  constructor(readonly child: ChildProcess) {
    const collect = (stream: NodeJS.ReadableStream | null, into: string[]) => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          into.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream?.on('end', () => {
        if (buf) into.push(buf);
      });
    };
    collect(child.stdout, this.lines);
    collect(child.stderr, this.stderr);
    child.on('error', (err) => (this.spawnError = err));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
        resolve();
      }),
    );
  }

  get running(): boolean {
    return this.spawnError === undefined && this.exitCode === null && this.signal === null;
  }

  /** Ended, but not by the harness's stop or kill9, nor on its own with success. */
  get died(): boolean {
    return !this.running && !this.stopping && this.exitCode !== 0;
  }

  /** Parsed JSON log lines (pino). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  async waitForLog(predicate: (line: Record<string, unknown>) => boolean, what: string, timeoutMs = 30_000) {
    try {
      return await waitFor(() => this.logs().find(predicate), what, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.describe()}`, { cause: err });
    }
  }

  /** What a failed wait reports: the process's state and its last output. */
  describe(): string {
    const state = this.running ? 'running' : `ended (exit code ${this.exitCode}, signal ${this.signal})`;
    const age = ((performance.now() - this.startedAt) / 1000).toFixed(1);
    return [
      `--- pid ${this.child.pid ?? 'none'}, ${state}, started ${age} s ago${this.spawnError ? `, spawn error: ${this.spawnError.message}` : ''}`,
      `--- stdout (${this.lines.length} lines, the last 30):`,
      ...this.lines.slice(-30),
      '--- stderr:',
      ...this.stderr,
    ].join('\n');
  }

  async exit(): Promise<void> {
    await this.exited;
  }

  /** kill -9: no chance to clean up. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

export interface ControlPlaneProc {
  proc: Proc;
  url: string;
  port: number;
  adminToken: string;
  /** A `fetch` that trusts this control plane (over TLS, its test certificate). */
  fetch: typeof fetch;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** Starts `cairn-control-plane` as a separate process and waits until it listens. */
export async function startControlPlane(opts: {
  databaseUrl: string;
  dataDir: string;
  port?: number;
  env?: Record<string, string>;
  /** Serve HTTPS (and wss://) with this certificate. */
  tls?: TestCertificate;
  /** Node options that NODE_OPTIONS refuses (the benchmarks' `--cpu-prof`). */
  nodeArgs?: string[];
}): Promise<ControlPlaneProc> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), bin(CP_BIN)], {
    env: {
      ...process.env,
      CAIRN_DATABASE_URL: opts.databaseUrl,
      CAIRN_DATA_DIR: opts.dataDir,
      CAIRN_PORT: String(opts.port ?? 0),
      CAIRN_HOST: '127.0.0.1',
      CAIRN_ADMIN_TOKEN: ADMIN_TOKEN,
      CAIRN_HEARTBEAT_MS: '500',
      CAIRN_TASK_LEASE_MS: '15000',
      CAIRN_DISPATCH_POLL_MS: '200',
      CAIRN_LOG_LEVEL: 'info',
      // Tests stop many control planes; the readiness drain has a test of its own.
      CAIRN_SHUTDOWN_DRAIN_MS: '0',
      // Periodic sync and prune have tests of their own; elsewhere they would add tasks no test counts.
      CAIRN_SYNC_INTERVAL_S: '0',
      CAIRN_PRUNE_INTERVAL_S: '0',
      ...(opts.tls ? { CAIRN_TLS_CERT: opts.tls.certFile, CAIRN_TLS_KEY: opts.tls.keyFile } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new Proc(child);
  const line = await proc.waitForLog((l) => l['msg'] === 'control plane listening', 'control plane to listen');
  return {
    proc,
    url: String(line['url']),
    port: Number(line['port']),
    adminToken: ADMIN_TOKEN,
    fetch: opts.tls ? fetchTrusting(opts.tls.pem) : fetch,
  };
}

/** Runs `cairn-control-plane` expecting it not to start (bad settings): to its exit. */
export async function runControlPlaneCommand(env: Record<string, string>): Promise<Proc> {
  const proc = new Proc(
    spawn(process.execPath, [bin(CP_BIN)], {
      env: { ...process.env, CAIRN_HOST: '127.0.0.1', CAIRN_PORT: '0', CAIRN_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const t = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  await proc.exit();
  clearTimeout(t);
  return proc;
}

/**
 * A fresh temporary directory. Under the test runner it lies in the run's own directory, which the
 * run removes at its end (test/harness/global-setup.ts); a stack's own (`stack.tempDir`) goes
 * sooner, once everything the stack started has stopped.
 */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(process.env['CAIRN_TEST_TMPDIR'] ?? os.tmpdir(), `cairn-${prefix}-`));
}

/** Runs a `cairn-agent` command to completion. */
export async function runAgentCommand(args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const proc = new Proc(
    spawn(process.execPath, [bin(AGENT_BIN), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  await proc.exit();
  return proc;
}

export interface AgentProc {
  proc: Proc;
  stateDir: string;
  agentId: string;
}

/** Enrolls an agent with a fresh one-time token into a new state dir; `args` go to `cairn-agent enroll`. */
export async function enrollAgent(
  cp: ControlPlaneProc,
  zone: string,
  name: string,
  opts: { args?: string[] } = {},
): Promise<{ stateDir: string; agentId: string }> {
  const res = await cp.fetch(`${cp.url}/v1/agent-enrollments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ zone }),
  });
  if (res.status !== 201) throw new Error(`enrollment failed: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  const stateDir = tempDir('agent');
  const proc = await runAgentCommand([
    'enroll',
    '--server',
    cp.url,
    '--token',
    token,
    '--state-dir',
    stateDir,
    '--name',
    name,
    ...(opts.args ?? []),
  ]);
  if (proc.exitCode !== 0)
    throw new Error(`cairn-agent enroll exited ${proc.exitCode}: ${proc.stderr.join('\n')} ${proc.lines.join('\n')}`);
  const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as { agentId: string };
  return { stateDir, agentId: state.agentId };
}

/** Starts `cairn-agent run` and waits for its first session. */
export async function startAgent(
  stateDir: string,
  opts: {
    plugins?: string;
    slots?: number;
    args?: string[];
    waitConnected?: boolean;
    env?: Record<string, string>;
    /** Node options that NODE_OPTIONS refuses (the benchmarks' `--cpu-prof`). */
    nodeArgs?: string[];
    /** A command the agent runs under (the benchmarks' `strace`): its pid is then the wrapper's. */
    wrapper?: string[];
  } = {},
): Promise<Proc> {
  const args = [
    'run',
    '--state-dir',
    stateDir,
    '--plugins',
    opts.plugins ?? '@cairn/plugin-dummy',
    '--slots',
    String(opts.slots ?? 2),
    ...(opts.args ?? []),
  ];
  const command = [process.execPath, ...(opts.nodeArgs ?? []), bin(AGENT_BIN), ...args];
  const [file, ...argv] = [...(opts.wrapper ?? []), ...command];
  const proc = new Proc(
    spawn(file!, argv, {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  if (opts.waitConnected !== false) await proc.waitForLog((l) => l['msg'] === 'agent connected', 'agent to connect');
  return proc;
}
