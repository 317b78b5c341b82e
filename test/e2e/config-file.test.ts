import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { Proc, root, tempDir } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const CP_BIN = path.join(root, 'packages/control-plane/dist/main.js');
const AGENT_BIN = path.join(root, 'packages/agent/dist/main.js');

/** This process's environment without any Cairn setting, so only the test's own apply. */
function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CAIRN_')) out[k] = v;
  return { ...out, ...env };
}

/** Runs a built Cairn command in `cwd`; a process that never exits (it started after all) is killed after 30 s. */
function launch(bin: string, args: string[], env: Record<string, string>, cwd: string): Proc {
  const proc = new Proc(
    spawn(process.execPath, [bin, ...args], { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const t = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  proc.child.once('exit', () => clearTimeout(t));
  return proc;
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function writeToml(file: string, lines: string[], mode = 0o600): string {
  fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode });
  fs.chmodSync(file, mode);
  return file;
}

/** A TOML string: JSON's escapes are TOML's for the paths and URLs used here. */
const q = (s: string) => JSON.stringify(s);

describe.each(backends)('the control plane from a config file (%s)', (backend) => {
  // The database only: each test starts its own control plane from a config file.
  const stack = withStack(backend, { replicas: 0 });
  const dir = stack.tempDir('config-cp');

  /** A control plane's config file: its own port, data directory and token, and the test's database. */
  async function configFile(name: string) {
    const port = await freePort();
    const dataDir = path.join(dir, `${name}-data`);
    const token = `${name}-admin-token-0123456789`;
    const file = writeToml(path.join(dir, `${name}.toml`), [
      `# ${name}`,
      `port = ${port}`,
      'host = "127.0.0.1"',
      `data_dir = ${q(dataDir)}`,
      // SQLite: the default, cairn.db in data_dir; MySQL: the test's database.
      ...(backend === 'mysql' ? [`database_url = ${q(stack.db.url)}`] : []),
      `admin_token = ${q(token)}`,
      'heartbeat_ms = 500',
      'task_lease_ms = 15000',
      'shutdown_drain_ms = 0',
      'sync_interval_s = 0',
      'prune_interval_s = 0',
    ]);
    return { file, port, dataDir, token };
  }

  async function listening(proc: Proc): Promise<Record<string, unknown>> {
    stack.onTeardown(() => proc.stop());
    return proc.waitForLog((l) => l['msg'] === 'control plane listening', 'control plane to listen');
  }

  it('comes up on the port, data directory, database and token the file names (--config FILE)', async () => {
    const { file, port, dataDir, token } = await configFile('flag');
    const line = await listening(launch(CP_BIN, ['--config', file], {}, dir));
    expect(line).toMatchObject({ port, url: `http://127.0.0.1:${port}`, config: file });
    const tenants = await new Api(`http://127.0.0.1:${port}`, token).call('GET', '/v1/tenants');
    expect(tenants.status).toBe(200);
    if (backend === 'sqlite') expect(fs.existsSync(path.join(dataDir, 'cairn.db'))).toBe(true);
    else expect(line['database']).toBe(stack.db.url.replace(/\/\/[^@]*@/, '//***@'));
  });

  it('lets the environment win over the file (CAIRN_CONFIG names the file)', async () => {
    const { file, port, token } = await configFile('env');
    const envPort = await freePort();
    const line = await listening(launch(CP_BIN, [], { CAIRN_CONFIG: file, CAIRN_PORT: String(envPort) }, dir));
    expect(line).toMatchObject({ port: envPort, config: file });
    expect(envPort).not.toBe(port);
    expect((await new Api(`http://127.0.0.1:${envPort}`, token).call('GET', '/v1/tenants')).status).toBe(200);
  });
});

describe('a control plane with a bad config file does not start', () => {
  // No stack: the control plane must fail on its file before it opens any database.
  let dir: string;
  beforeAll(() => (dir = tempDir('config-bad-cp')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cases: [string, string[], number, (file: string) => string][] = [
    ['an unknown key', ['prot = 8443'], 0o600, (f) => `${f}: unknown key "prot" (did you mean "port"?)`],
    [
      'a value of the wrong type',
      ['port = "8443"'],
      0o600,
      (f) => `${f}: port: must be a number, written without quotes, got "8443"`,
    ],
    [
      'a value out of range',
      ['request_timeout_ms = 300000'],
      0o600,
      (f) => `${f}: request_timeout_ms: must be a whole number from 1000 to 30000, got 300000`,
    ],
    [
      'a file that is not TOML',
      ['port = 8443', 'host = 0.0.0.0'],
      0o600,
      (f) => `${f}:3:11: not a valid TOML file: illegal character in numeric literal`,
    ],
    [
      'a secret every user may read',
      ['admin_token = "a-long-enough-admin-token"'],
      0o644,
      (f) =>
        `${f}: holds a secret (admin_token) but every user of the host may read it (mode 0644); make it readable by its owner and group only (chmod 0640)`,
    ],
  ];

  it.each(cases)(
    'refuses %s: one line naming the file and key, exit 2, nothing written',
    async (name, lines, mode, problem) => {
      const slug = name.replaceAll(' ', '-');
      const dataDir = path.join(dir, `${slug}-data`);
      const file = writeToml(path.join(dir, `${slug}.toml`), [`data_dir = ${q(dataDir)}`, ...lines], mode);
      const proc = launch(CP_BIN, ['--config', file], {}, dir);
      await proc.exit();
      expect(proc.stderr).toEqual([`cairn-control-plane: ${problem(file)}`]);
      expect(proc.exitCode).toBe(2);
      expect(proc.lines).toEqual([]);
      expect(fs.existsSync(dataDir)).toBe(false);
    },
  );

  it('refuses a config file that is missing', async () => {
    const dataDir = path.join(dir, 'missing-data');
    const file = path.join(dir, 'missing.toml');
    const proc = launch(CP_BIN, [], { CAIRN_CONFIG: file, CAIRN_DATA_DIR: dataDir }, dir);
    await proc.exit();
    expect(proc.stderr).toEqual([
      `cairn-control-plane: ${file}: cannot read the config file (ENOENT: no such file or directory, open '${file}')`,
    ]);
    expect(proc.exitCode).toBe(2);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});

describe.each(backends)('the agent from a config file (%s)', (backend) => {
  // The agent restarts several times here: no pacing of its reconnects.
  const stack = withStack(backend, { env: { CAIRN_AGENT_RECONNECT_MS: '0' } });
  const dir = stack.tempDir('config-agent');
  let api: Api;
  let agentId: string;
  let stateDir: string;
  let file: string;

  beforeAll(async () => {
    api = stack.admin;
    ({ agentId, stateDir } = await stack.enroll('zone-a', 'from-file'));
    stack.onTeardown(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    file = writeToml(path.join(dir, 'agent.toml'), [
      `state_dir = ${q(stateDir)}`,
      'plugins = ["@cairn/plugin-dummy"]',
      'slots = 3',
      'shutdown_grace = "5s"',
      'log_level = "info"',
    ]);
  });

  /** Runs the agent until the control plane shows it connected with `slots`; returns its start line. */
  async function runUntilConnected(args: string[], env: Record<string, string>, slots: number) {
    const proc = launch(AGENT_BIN, ['run', ...args], env, dir);
    try {
      const start = await proc.waitForLog((l) => l['msg'] === 'agent starting', 'agent to start');
      await proc.waitForLog((l) => l['msg'] === 'agent connected', 'agent to connect');
      await waitFor(async () => {
        const agent = await api.call('GET', `/v1/agents/${agentId}`);
        return agent.body.state === 'connected' && agent.body.slots === slots;
      }, `agent connected with ${slots} slots`);
      return start;
    } finally {
      await proc.stop();
    }
  }

  it('runs with the state directory, plugins and slots of the file (--config FILE)', async () => {
    const start = await runUntilConnected(['--config', file], {}, 3);
    expect(start).toMatchObject({
      agentId,
      slots: 3,
      config: file,
      plugins: [expect.stringMatching(/^@cairn\/plugin-dummy@/)],
    });
  });

  it('lets the environment win over the file (CAIRN_AGENT_CONFIG names it), and a flag over both', async () => {
    expect(await runUntilConnected([], { CAIRN_AGENT_CONFIG: file, CAIRN_AGENT_SLOTS: '5' }, 5)).toMatchObject({
      slots: 5,
      config: file,
    });
    expect(
      await runUntilConnected(['--slots', '4'], { CAIRN_AGENT_CONFIG: file, CAIRN_AGENT_SLOTS: '5' }, 4),
    ).toMatchObject({ slots: 4 });
  });

  it('finds its state directory in the file for status and drain too', async () => {
    const status = launch(AGENT_BIN, ['status', '--config', file, '-o', 'json'], {}, dir);
    await status.exit();
    expect(status.exitCode).toBe(0);
    expect(JSON.parse(status.lines.join('\n'))).toMatchObject({ agentId });
    for (const command of ['drain', 'undrain']) {
      const proc = launch(AGENT_BIN, [command], { CAIRN_AGENT_CONFIG: file }, dir);
      await proc.exit();
      expect(proc.exitCode, proc.stderr.join('\n')).toBe(0);
      expect(proc.lines.join('\n')).toContain(path.join(stateDir, 'drain.json'));
    }
  });
});

describe('an agent with a bad config file does not start', () => {
  // No stack: the agent must fail on its file before it reaches any control plane.
  let dir: string;
  beforeAll(() => (dir = tempDir('config-bad-agent')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cases: [string, string[], (file: string) => string][] = [
    [
      'an unknown key',
      ['slot = 2'],
      (f) =>
        `${f}: unknown key "slot" (the keys are state_dir, plugins, slots, server, log_level, disconnect_abort_ms, task_timeout_ms, plugin_isolation, plugin_heap_mb, max_frame_bytes, shutdown_grace, roots)`,
    ],
    [
      'a value of the wrong type',
      ['slots = "2"'],
      (f) => `${f}: slots must be a whole number, written without quotes, got "2"`,
    ],
    ['a value out of range', ['slots = 0'], (f) => `${f}: slots must be an integer from 1 to 1000, got "0"`],
    [
      'a file that is not TOML',
      ['slots = 2 2'],
      (f) => `${f}:2:11: not a valid TOML file: each key-value declaration must be followed by an end-of-line`,
    ],
  ];

  it.each(cases)(
    'refuses %s: one line naming the file and key, exit 2, nothing written',
    async (name, lines, problem) => {
      const slug = name.replaceAll(' ', '-');
      const stateDir = path.join(dir, `${slug}-state`);
      const file = writeToml(path.join(dir, `${slug}.toml`), [`state_dir = ${q(stateDir)}`, ...lines]);
      const proc = launch(AGENT_BIN, ['run', '--config', file], {}, dir);
      await proc.exit();
      expect(proc.stderr).toEqual([`cairn-agent run: ${problem(file)}`]);
      expect(proc.exitCode).toBe(2);
      expect(fs.existsSync(stateDir)).toBe(false);
    },
  );

  it('refuses a config file that is missing', async () => {
    const file = path.join(dir, 'missing.toml');
    const stateDir = path.join(dir, 'missing-state');
    const proc = launch(AGENT_BIN, ['run'], { CAIRN_AGENT_CONFIG: file, CAIRN_AGENT_STATE_DIR: stateDir }, dir);
    await proc.exit();
    expect(proc.stderr).toEqual([
      `cairn-agent run: ${file}: cannot read the config file (ENOENT: no such file or directory, open '${file}')`,
    ]);
    expect(proc.exitCode).toBe(2);
    expect(fs.existsSync(stateDir)).toBe(false);
  });
});
