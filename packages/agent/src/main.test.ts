import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canChoosePid, PidTaken, spawnWithPid } from '@cairn/test-harness/pids';
import { systemClock } from './clock.js';
import { Spool } from './spool/spool.js';
import { readDrain, readServerDrain } from './state/drain.js';
import { enrollForTest, fixture, spawnAgentCli } from './testing/agents.js';
import { FakeControlPlane } from './testing/fake-control-plane.js';
import { tempDir, waitFor } from './testing/wait.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const stateDir = () => path.join(dir, 'state');

/** A control plane that only knows the enrollment route. */
async function enrollmentServer(): Promise<{ url: string; bodies: unknown[]; close: () => Promise<void> }> {
  const bodies: unknown[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as { token?: string; name?: string };
      bodies.push(body);
      if (req.method !== 'POST' || req.url !== '/v1/agents/enroll') return res.writeHead(404).end();
      if (body.token !== 'good-token') {
        res.writeHead(401, { 'content-type': 'application/problem+json' });
        return res.end(
          JSON.stringify({
            type: 'about:blank',
            title: 'Unauthorized',
            status: 401,
            detail: 'enrollment token was already used',
            code: 'unauthorized',
          }),
        );
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ agentId: 'agt_new', credential: 'agent_secret', zone: 'zone-b', name: body.name }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('cairn-agent enroll', () => {
  it('stores the credential in agent.json, readable by the owner only', async () => {
    const cp = await enrollmentServer();
    try {
      const child = spawnAgentCli([
        'enroll',
        '--server',
        cp.url,
        '--token',
        'good-token',
        '--state-dir',
        stateDir(),
        '--name',
        'edge-1',
      ]);
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(child.stdout).toContain('enrolled agent agt_new (edge-1) in zone zone-b');
      const file = path.join(stateDir(), 'agent.json');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
        server: cp.url,
        agentId: 'agt_new',
        credential: 'agent_secret',
        zone: 'zone-b',
        name: 'edge-1',
      });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(cp.bodies[0]).toMatchObject({
        token: 'good-token',
        name: 'edge-1',
        hostname: expect.any(String) as unknown,
      });
    } finally {
      await cp.close();
    }
  });

  it("prints the control plane's problem detail and exits 1 when refused", async () => {
    const cp = await enrollmentServer();
    try {
      const child = spawnAgentCli(['enroll', '--server', cp.url, '--token', 'spent', '--state-dir', stateDir()]);
      expect((await child.exited).code).toBe(1);
      expect(child.stderr).toContain('enrollment token was already used');
    } finally {
      await cp.close();
    }
  });

  it('refuses a state directory that already holds an enrolled agent, unless --force', async () => {
    const cp = await enrollmentServer();
    try {
      enrollForTest(stateDir(), cp.url, { agentId: 'agt_old' });
      const refused = spawnAgentCli(['enroll', '--server', cp.url, '--token', 'good-token', '--state-dir', stateDir()]);
      expect((await refused.exited).code).toBe(1);
      expect(refused.stderr).toContain('already holds enrolled agent agt_old');
      expect(cp.bodies).toHaveLength(0); // the one-time token was not spent
      // The old identity's reports: the new one must not send them.
      const old = Spool.open(stateDir(), { clock: systemClock });
      old.append('progress', { taskId: 'tsk_old', attempt: 1, percent: 1, atMs: 1 });
      await old.flushed();

      const forced = spawnAgentCli([
        'enroll',
        '--server',
        cp.url,
        '--token',
        'good-token',
        '--state-dir',
        stateDir(),
        '--force',
      ]);
      expect((await forced.exited).code).toBe(0);
      expect(JSON.parse(readFileSync(path.join(stateDir(), 'agent.json'), 'utf8'))).toMatchObject({
        agentId: 'agt_new',
      });
      expect(existsSync(path.join(stateDir(), 'wal'))).toBe(false);
    } finally {
      await cp.close();
    }
  });

  it('exits 2 on a missing flag', async () => {
    const child = spawnAgentCli(['enroll', '--token', 'x', '--state-dir', stateDir()]);
    expect((await child.exited).code).toBe(2);
    expect(child.stderr).toContain("required option '--server <url>' not specified");
  });
});

describe('cairn-agent run', () => {
  /** A working directory with fixture plugins installed under node_modules. */
  function workdir(): string {
    const cwd = path.join(dir, 'work');
    mkdirSync(path.join(cwd, 'node_modules'), { recursive: true });
    symlinkSync(fixture('bad-api-version'), path.join(cwd, 'node_modules', 'cairn-plugin-bad-api'), 'dir');
    symlinkSync(fixture('invalid-manifest'), path.join(cwd, 'node_modules', 'cairn-plugin-invalid-manifest'), 'dir');
    symlinkSync(fixture('api-version-mismatch'), path.join(cwd, 'node_modules', 'cairn-plugin-api-mismatch'), 'dir');
    return cwd;
  }

  it('refuses to start with a plugin on an unsupported SDK API version, exit 2', async () => {
    enrollForTest(stateDir(), 'http://127.0.0.1:9');
    const child = spawnAgentCli(
      ['run', '--state-dir', stateDir(), '--plugins', '@cairn/plugin-dummy,cairn-plugin-bad-api'],
      { cwd: workdir() },
    );
    expect((await child.exited).code).toBe(2);
    expect(child.stderr).toContain(
      'plugin cairn-plugin-bad-api: SDK API version 7 is not supported by this agent (supports 1)',
    );
  });

  it('refuses to start with a plugin whose package.json and manifest declare other API versions, exit 2', async () => {
    enrollForTest(stateDir(), 'http://127.0.0.1:9');
    const child = spawnAgentCli(
      ['run', '--state-dir', stateDir(), '--plugins', '@cairn/plugin-dummy,cairn-plugin-api-mismatch'],
      { cwd: workdir() },
    );
    expect((await child.exited).code).toBe(2);
    expect(child.stderr).toContain(
      'plugin cairn-plugin-api-mismatch: declares SDK API version 1 in package.json ("cairn".apiVersions) but version 2 in its manifest',
    );
  });

  it('refuses to start with a plugin whose manifest is invalid, exit 2', async () => {
    enrollForTest(stateDir(), 'http://127.0.0.1:9');
    const child = spawnAgentCli(['run', '--state-dir', stateDir()], {
      cwd: workdir(),
      env: { CAIRN_AGENT_PLUGINS: 'cairn-plugin-invalid-manifest' },
    });
    expect((await child.exited).code).toBe(2);
    expect(child.stderr).toMatch(/^plugin cairn-plugin-invalid-manifest: invalid manifest: .*capabilities\.1/m);
  });

  it('exits 2 without an enrolled state directory, or with a bad flag', async () => {
    const missing = spawnAgentCli(['run', '--state-dir', stateDir()]);
    expect((await missing.exited).code).toBe(2);
    expect(missing.stderr).toContain(`no enrolled agent in ${stateDir()}`);

    const badSlots = spawnAgentCli(['run', '--state-dir', stateDir(), '--slots', 'many']);
    expect((await badSlots.exited).code).toBe(2);
    expect(badSlots.stderr).toContain('--slots must be an integer from 1 to 1000, got "many"');

    const unknown = spawnAgentCli(['run', '--state-dir', stateDir(), '--turbo']);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--turbo'");
  });

  it('reports AGENT_INTERRUPTED for the attempt it was running when it was killed with -9', async () => {
    const cp = await FakeControlPlane.start({ heartbeatIntervalMs: 1_000 });
    const agents = [];
    try {
      enrollForTest(stateDir(), cp.url);
      const first = spawnAgentCli(['run', '--state-dir', stateDir(), '--log-level', 'debug']);
      agents.push(first);
      const connected = await first.waitForLog('agent connected');
      expect(connected).toMatchObject({ agentId: 'agt_test', sessionId: 'session-0' });
      await cp.waitForSession(0);
      cp.send({
        assign: {
          taskId: 'tsk_killed',
          attempt: 3,
          operation: 'backup',
          plugin: '@cairn/plugin-dummy',
          providerConfigJson: JSON.stringify({
            endpoint: null,
            config: { durationMs: 120_000, steps: 1000 },
            credentials: {},
          }),
          paramsJson: JSON.stringify({ instanceId: 'ins_1', instanceName: 'vm-1', locator: {}, mode: 'FULL' }),
        },
      });
      await cp.waitForReport('tsk_killed', 'progress');
      first.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');

      const second = spawnAgentCli(['run', '--state-dir', stateDir()]);
      agents.push(second);
      const result = await cp.waitForReport('tsk_killed', 'result', 30_000);
      expect(result.attempt).toBe(3);
      expect(result.frame.result?.error).toMatchObject({
        code: 'AGENT_INTERRUPTED',
        message: 'agent restarted while the task was running',
      });
      // It runs nothing, and lists the attempt whose end it has not had acknowledged: the control
      // plane does not send it again.
      expect(cp.sessions.at(-1)?.hello?.running).toEqual([{ taskId: 'tsk_killed', attempt: 3 }]);
      expect(cp.reportsFor('tsk_killed', 'result')).toHaveLength(1);

      second.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    } finally {
      for (const a of agents) a.kill('SIGKILL');
      await cp.close();
    }
  });
});

describe('cairn-agent drain / undrain', () => {
  it('writes the local drain file the running agent obeys', async () => {
    enrollForTest(stateDir(), 'http://127.0.0.1:9');
    const drain = spawnAgentCli(['drain', '--state-dir', stateDir(), '--message', 'rack move']);
    expect((await drain.exited).code).toBe(0);
    expect(readDrain(stateDir())).toMatchObject({ enabled: true, message: 'rack move', source: 'local' });

    const undrain = spawnAgentCli(['undrain'], { env: { CAIRN_AGENT_STATE_DIR: stateDir() } });
    expect((await undrain.exited).code).toBe(0);
    expect(readDrain(stateDir()).enabled).toBe(false);
  });

  it('exits 2 for a state directory without an agent', async () => {
    const drain = spawnAgentCli(['drain', '--state-dir', stateDir()]);
    expect((await drain.exited).code).toBe(2);
  });
});

describe('cairn-agent status', () => {
  const status = async (): Promise<{ json: Record<string, any>; text: string }> => {
    const json = spawnAgentCli(['status', '--state-dir', stateDir(), '-o', 'json']);
    expect((await json.exited).code).toBe(0);
    const text = spawnAgentCli(['status', '--state-dir', stateDir()]);
    expect((await text.exited).code).toBe(0);
    return { json: JSON.parse(json.stdout) as Record<string, any>, text: text.stdout };
  };

  it('shows the drains, the running tasks and the control plane last reached, of a live and then a killed agent', async () => {
    const cp = await FakeControlPlane.start({ heartbeatIntervalMs: 1_000 });
    let agent: ReturnType<typeof spawnAgentCli> | undefined;
    try {
      enrollForTest(stateDir(), cp.url);
      expect((await status()).json).toMatchObject({
        agentId: 'agt_test',
        zone: 'zone-a',
        process: { running: false, pid: null },
        controlPlane: { url: cp.url, state: 'never' },
        drain: { refusesBackups: false },
        running: [],
      });

      agent = spawnAgentCli(['run', '--state-dir', stateDir()]);
      await agent.waitForLog('agent connected');
      await cp.waitForSession(0);
      cp.send({
        assign: {
          taskId: 'tsk_long',
          attempt: 2,
          operation: 'backup',
          plugin: '@cairn/plugin-dummy',
          providerConfigJson: JSON.stringify({ endpoint: null, config: { durationMs: 120_000 }, credentials: {} }),
          paramsJson: JSON.stringify({ instanceId: 'ins_1', instanceName: 'vm-1', locator: {}, mode: 'FULL' }),
        },
      });
      await cp.waitForReport('tsk_long', 'accepted');
      cp.send({ drain: { enabled: true, message: 'storage upgrade' } });
      await waitFor(() => readServerDrain(stateDir()).enabled, 'the control plane drain on disk');
      const live = await status();
      expect(live.json).toMatchObject({
        process: { running: true, pid: agent.child.pid },
        controlPlane: { url: cp.url, state: 'connected', lostAt: null },
        drain: {
          refusesBackups: true,
          message: 'storage upgrade',
          local: { enabled: false },
          controlPlane: { enabled: true, message: 'storage upgrade' },
        },
      });
      expect(live.text).toContain('backups        refused: storage upgrade');
      expect(live.text).toMatch(/control plane {2}http:\/\/127\.0\.0\.1:\d+: connected since /);
      expect(live.json['running']).toEqual([
        expect.objectContaining({ taskId: 'tsk_long', attempt: 2, operation: 'backup', plugin: '@cairn/plugin-dummy' }),
      ]);
      expect(live.text).toMatch(/^ {2}tsk_long {2}backup {2}@cairn\/plugin-dummy {2}attempt 2 {2}since /m);

      agent.kill('SIGKILL');
      await agent.exited;
      const dead = await status();
      expect(dead.json).toMatchObject({
        process: { running: false, pid: agent.child.pid },
        controlPlane: { state: 'disconnected', lastConnectedAt: live.json['controlPlane'].lastConnectedAt },
        // Still obeyed by the next start, cut off or not.
        drain: { refusesBackups: true, message: 'storage upgrade' },
        running: [expect.objectContaining({ taskId: 'tsk_long' })],
      });
      expect(dead.text).toContain('running tasks  1 (interrupted: reported when the agent starts again)');
      expect(dead.text).toMatch(/control plane {2}http:\/\/127\.0\.0\.1:\d+: last reached /);

      // Its PID taken by another process, as a busy host does within minutes: still not running.
      // (Another process may have taken it already: that is the same case, with a stranger of its own.)
      if (canChoosePid) {
        const stranger = await spawnWithPid(agent.child.pid!).catch((err: unknown) => {
          if (err instanceof PidTaken) return undefined;
          throw err;
        });
        try {
          expect((await status()).json).toMatchObject({ process: { running: false, pid: agent.child.pid } });
        } finally {
          stranger?.kill('SIGKILL');
        }
      } else
        console.warn('[agent] the PID reuse case of status is skipped: this machine does not let a test choose a PID');
    } finally {
      agent?.kill('SIGKILL');
      await agent?.exited;
      await cp.close();
    }
  });
});
