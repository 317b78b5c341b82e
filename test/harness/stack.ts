import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Store } from '@cairn/control-plane';
import { Api } from './api.js';
import { clockEnv, setClock, tickedAt } from './clock.js';
import { freshDatabase, type Backend, type TestDatabase } from './databases.js';
import { enrollAgent, startAgent, startControlPlane, tempDir, type ControlPlaneProc, type Proc } from './processes.js';
import { backup, type TaskBody } from './scenario.js';
import type { TestCertificate } from './tls.js';

/*
 * One e2e stack: a fresh database, its control plane(s), enrolled agents and an admin client,
 * torn down in one place. `withStack` gives a describe block one stack (beforeAll/afterAll),
 * `stackPerTest` a fresh one to each test that asks (afterEach). Whatever the stack starts,
 * and whatever a test hands to `onTeardown`, is undone in reverse order, even when the start
 * failed half-way.
 */

/** An agent to enroll and run. */
export interface AgentOptions {
  /** Default `zone-a`. */
  zone?: string;
  /** Default `host-<n>`, n counting the stack's agents from 1. */
  name?: string;
  /** `--plugins`; default the dummy plugin. */
  plugins?: string;
  /** `--slots`; default 2. */
  slots?: number;
  /** `--roots`: the host directories plugins may touch. */
  roots?: string[];
  /** More `cairn-agent run` arguments. */
  args?: string[];
  /** More `cairn-agent enroll` arguments. */
  enrollArgs?: string[];
  /** The control plane it enrolls through, and so connects to; default the first. */
  via?: ControlPlaneProc;
  env?: Record<string, string>;
}

export interface StackOptions {
  /** Control-plane settings, on top of the harness's defaults, for every control plane of the stack. */
  env?: Record<string, string>;
  /** Run every control plane under the test clock, set to this time first (see clock.ts). */
  clockAt?: string;
  /** Serve HTTPS with this certificate (the admin client trusts it). */
  tls?: TestCertificate;
  /** Create the MySQL database with the server's default collation (see freshDatabase). */
  serverCollation?: boolean;
  /** Control planes on the one database (default 1; 0 to start them in the test); agents enroll through the first. */
  replicas?: number;
  /** Agents enrolled and started, in this order, once the control planes listen. */
  agents?: AgentOptions[];
}

export interface StackAgent {
  proc: Proc;
  stateDir: string;
  agentId: string;
}

export interface Tenant {
  id: string;
  token: string;
  api: Api;
}

export class Stack {
  private started?: {
    db: TestDatabase;
    replicas: ControlPlaneProc[];
    agents: StackAgent[];
  };
  private clockFile?: string;
  private readonly teardown: (() => Promise<void> | void)[] = [];
  private readonly dirs: string[] = [];
  private agentCount = 0;

  constructor(
    readonly backend: Backend,
    readonly options: StackOptions = {},
  ) {}

  private get up() {
    if (!this.started) throw new Error('the stack is not started: use it inside a hook or a test');
    return this.started;
  }
  get db(): TestDatabase {
    return this.up.db;
  }
  /** The first control plane. */
  get cp(): ControlPlaneProc {
    const first = this.up.replicas[0];
    if (!first) throw new Error('the stack has no control plane yet: start one with controlPlane()');
    return first;
  }
  /** Every control plane on the database, in start order (replicas first, then `controlPlane()`'s). */
  get replicas(): ControlPlaneProc[] {
    return this.up.replicas;
  }
  /** The sp-admin's client of the first control plane. */
  get admin(): Api {
    return this.adminOf(this.cp);
  }
  /** The agents the options named, then those `addAgent` started. */
  get agents(): StackAgent[] {
    return this.up.agents;
  }
  /** The first agent. */
  get agent(): StackAgent {
    const first = this.up.agents[0];
    if (!first) throw new Error('the stack has no agent: name one in its options');
    return first;
  }
  /** The test clock's file (only with `clockAt`). */
  get clock(): string {
    if (!this.clockFile) throw new Error('the stack has no test clock: give it `clockAt`');
    return this.clockFile;
  }

  /** Registers `fn` to run at teardown (before what was registered earlier). */
  onTeardown(fn: () => Promise<void> | void): void {
    this.teardown.push(fn);
  }

  async start(): Promise<this> {
    const o = this.options;
    const db = await freshDatabase(this.backend, { serverCollation: o.serverCollation ?? false });
    this.onTeardown(() => db.drop());
    if (o.clockAt) {
      const dir = tempDir('clock');
      this.clockFile = path.join(dir, 'now');
      setClock(this.clockFile, o.clockAt);
    }
    const replicas: ControlPlaneProc[] = [];
    this.started = { db, replicas, agents: [] };
    for (let i = 0; i < (o.replicas ?? 1); i++) await this.controlPlane();
    for (const a of o.agents ?? []) await this.addAgent(a);
    return this;
  }

  /**
   * Runs every teardown step, newest first, then removes the stack's temporary directories; all
   * run even when one fails (the first error is thrown).
   */
  async stop(): Promise<void> {
    let first: unknown;
    const dirs = this.dirs.splice(0).map((dir) => () => fs.rmSync(dir, { recursive: true, force: true }));
    for (const fn of [...this.teardown.splice(0).reverse(), ...dirs]) {
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** A fresh temporary directory, removed once everything the stack started has stopped (may be asked before start). */
  tempDir(prefix: string): string {
    const dir = tempDir(prefix);
    this.dirs.push(dir);
    return dir;
  }

  /**
   * Starts another control plane on the stack's database (a replica, or a restart with `port`),
   * with the stack's env and clock; `env` and `tls` add to or replace the stack's.
   */
  async controlPlane(
    opts: {
      port?: number;
      env?: Record<string, string>;
      tls?: TestCertificate;
      /** Another database than the stack's (SQLite serves one process: a second one needs its own file). */
      database?: { url: string; dataDir: string };
    } = {},
  ) {
    const { db } = this.up;
    const tls = opts.tls ?? this.options.tls;
    const cp = await startControlPlane({
      databaseUrl: opts.database?.url ?? db.url,
      dataDir: opts.database?.dataDir ?? db.dataDir,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(tls ? { tls } : {}),
      env: { ...(this.clockFile ? clockEnv(this.clockFile) : {}), ...this.options.env, ...opts.env },
    });
    this.onTeardown(() => {
      if (cp.proc.died) console.error(exitReport(cp));
      return cp.proc.stop();
    });
    this.up.replicas.push(cp);
    return cp;
  }

  /** The stack's database opened directly (to write or read what the API does not); closed at teardown. */
  async store(): Promise<Store> {
    // Loaded here: most files never open the store.
    const { openStore } = await import('@cairn/control-plane');
    const store = openStore(this.db.url);
    this.onTeardown(() => store.close());
    return store;
  }

  /** A client of `cp` (the first control plane unless given) with `token`. */
  api(token: string, cp: ControlPlaneProc = this.cp): Api {
    return new Api(cp.url, token, cp.fetch);
  }

  /** The sp-admin's client of another control plane of the stack. */
  adminOf(cp: ControlPlaneProc): Api {
    return this.api(cp.adminToken, cp);
  }

  /**
   * Enrolls an agent through `via` (the first control plane unless given) without running it; its
   * state directory is removed at teardown, once everything the stack started has stopped.
   */
  async enroll(
    zone: string,
    name: string,
    enrollArgs: string[] = [],
    via: ControlPlaneProc = this.cp,
  ): Promise<{ stateDir: string; agentId: string }> {
    const enrolled = await enrollAgent(via, zone, name, { args: enrollArgs });
    this.dirs.push(enrolled.stateDir);
    return enrolled;
  }

  /** Enrolls an agent through the API alone, with no `cairn-agent` behind it: listed, never connected. */
  async enrollIdle(zone: string, name: string): Promise<void> {
    const { token } = await this.admin.expect(201, 'POST', '/v1/agent-enrollments', { zone });
    const res = await this.cp.fetch(`${this.cp.url}/v1/agents/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, name }),
    });
    if (res.status !== 201) throw new Error(`enrolling ${name}: ${res.status} ${await res.text()}`);
  }

  /** Runs `cairn-agent run` on an enrolled state dir; stopped (SIGTERM) at teardown. */
  async runAgent(stateDir: string, opts: Parameters<typeof startAgent>[1] = {}): Promise<Proc> {
    const proc = await startAgent(stateDir, opts);
    this.onTeardown(() => proc.stop());
    return proc;
  }

  /** Enrolls and runs one more agent, which joins `agents`. */
  async addAgent(a: AgentOptions = {}): Promise<StackAgent> {
    const n = ++this.agentCount;
    const { stateDir, agentId } = await this.enroll(a.zone ?? 'zone-a', a.name ?? `host-${n}`, a.enrollArgs, a.via);
    const args = [...(a.roots ? ['--roots', a.roots.join(',')] : []), ...(a.args ?? [])];
    const proc = await this.runAgent(stateDir, {
      ...(a.plugins ? { plugins: a.plugins } : {}),
      ...(a.slots !== undefined ? { slots: a.slots } : {}),
      ...(args.length ? { args } : {}),
      ...(a.env ? { env: a.env } : {}),
    });
    const agent = { proc, stateDir, agentId };
    this.up.agents.push(agent);
    return agent;
  }

  /** A new tenant with one token of `role` (default tenant-admin), granted `grants` (offering ids). */
  async tenant(name: string, opts: { role?: string; tokenName?: string; grants?: string[] } = {}): Promise<Tenant> {
    const id = (await this.admin.expect(201, 'POST', '/v1/tenants', { name })).id as string;
    for (const offeringId of opts.grants ?? [])
      await this.admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId: id });
    const token = await this.token(id, opts.role ?? 'tenant-admin', opts.tokenName ?? 't');
    return { id, token, api: this.api(token) };
  }

  /** A new token of `tenantId`. */
  async token(tenantId: string, role: string, name: string): Promise<string> {
    return (await this.admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role, name })).token as string;
  }

  /** An ad-hoc backup of `instanceId` started by `api` (default the admin), to its end. */
  backup(instanceId: string, opts: { api?: Api; body?: unknown; timeoutMs?: number } = {}): Promise<TaskBody> {
    return backup(opts.api ?? this.admin, instanceId, opts.body, opts.timeoutMs);
  }

  /** Sets the test clock. */
  setClock(iso: string): void {
    setClock(this.clock, iso);
  }

  /** Sets the test clock and waits until every running control plane's scheduler ticked at it. */
  async step(iso: string): Promise<void> {
    this.setClock(iso);
    await Promise.all(this.up.replicas.filter((cp) => cp.proc.running).map((cp) => tickedAt(cp, iso)));
  }
}

/** What a control plane that died under the test last wrote. */
function exitReport(cp: ControlPlaneProc): string {
  const { proc } = cp;
  return `control plane ${cp.url} exited (${proc.exitCode ?? proc.signal}):\n${proc.stderr.join('\n')}\n${proc.lines.slice(-20).join('\n')}`;
}

/** One stack for the enclosing describe block: started in beforeAll, torn down in afterAll. */
export function withStack(backend: Backend, options: StackOptions = {}): Stack {
  const stack = new Stack(backend, options);
  beforeAll(() => stack.start().then(() => undefined));
  afterAll(() => stack.stop());
  return stack;
}

/** A fresh stack for each test that calls the returned function; each is torn down after its test. */
export function stackPerTest(backend: Backend): (options?: StackOptions) => Promise<Stack> {
  const stacks: Stack[] = [];
  afterEach(async () => {
    const results = await Promise.allSettled(stacks.splice(0).map((s) => s.stop()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return (options = {}) => {
    const stack = new Stack(backend, options);
    stacks.push(stack);
    return stack.start();
  };
}
