import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { runAgentCommand, runControlPlaneCommand, tempDir, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { makeCertificate, type TestCertificate } from '@cairn/test-harness/tls';
import { waitFor } from '@cairn/test-harness/wait';

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

function storedState(stateDir: string): { server: string; serverTrust?: { ca?: string; fingerprint?: string } } {
  return JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as {
    server: string;
    serverTrust?: { ca?: string; fingerprint?: string };
  };
}

describe.each(backends)('TLS between agents, clients and the control plane (%s)', (backend) => {
  // Its control planes start once their certificates are made.
  const stack = withStack(backend, { replicas: 0 });
  /** The control plane's own certificate. */
  let good: TestCertificate;
  /** Another certificate for the same names: an impostor, or a wrong CA. */
  let other: TestCertificate;
  let cp: ControlPlaneProc;
  /** A second control plane that presents `other` (on MySQL, a replica on the same database). */
  let impostor: ControlPlaneProc;
  let api: Api;

  beforeAll(async () => {
    const dir = stack.tempDir('tls');
    good = makeCertificate(dir, 'good');
    other = makeCertificate(dir, 'other');
    cp = await stack.controlPlane({ tls: good });
    // On MySQL the impostor is a second replica on the same database; SQLite serves one process,
    // so there it has a database of its own.
    const own = stack.tempDir('impostor');
    impostor = await stack.controlPlane({
      tls: other,
      ...(backend === 'sqlite' ? { database: { url: `sqlite:${path.join(own, 'cairn.db')}`, dataDir: own } } : {}),
    });
    api = stack.admin;
  });

  /** A one-time enrollment token for `zone`. */
  async function enrollmentToken(zone: string): Promise<string> {
    return (await api.expect<{ token: string }>(201, 'POST', '/v1/agent-enrollments', { zone })).token;
  }

  /** A dummy backup of a new instance pinned to `agentId`, through the API, to its end. */
  async function backupThrough(agentId: string, zone: string) {
    const p = await protectInstance(api, zone, { agentId, config: { durationMs: 300, steps: 3 } });
    const started = await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    const done = await waitForTask(api, started.id, TERMINAL);
    const points = await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}`);
    return { done, points: points.items as unknown[] };
  }

  it('serves the API over HTTPS on its one port, logs the fingerprint to pin, and answers no plain HTTP', async () => {
    expect(cp.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const listening = await cp.proc.waitForLog((l) => l['msg'] === 'control plane listening', 'listening line');
    expect(listening['tls']).toMatchObject({ fingerprint: good.fingerprint });

    expect((await api.get('/healthz')).status).toBe(200);
    expect((await api.get('/readyz')).status).toBe(200);
    expect((await api.get('/openapi.json')).status).toBe(200);
    expect((await api.get('/v1/tenants')).status).toBe(200);
    const noToken = await new Api(cp.url, 'not-a-token-at-all', cp.fetch).get('/v1/tenants');
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('content-type')).toMatch(/problem\+json/);

    // The same port speaks nothing but TLS, and a client that does not trust the certificate
    // gets no answer either.
    await expect(fetch(`http://127.0.0.1:${cp.port}/healthz`)).rejects.toThrow();
    await expect(fetch(`${cp.url}/healthz`)).rejects.toThrow();
  });

  it('runs a dummy backup end to end over wss with an agent enrolled with --ca-file', async () => {
    const { stateDir, agentId } = await stack.enroll('zone-ca', 'ca-host', ['--ca-file', good.certFile]);
    expect(storedState(stateDir)).toMatchObject({ server: cp.url, serverTrust: { ca: good.pem } });
    // An agent enrolled over https is never pointed at plain http, where its credential would travel in clear.
    const downgraded = await runAgentCommand([
      'run',
      '--state-dir',
      stateDir,
      '--server',
      `http://127.0.0.1:${cp.port}`,
    ]);
    expect(downgraded.exitCode).toBe(2);
    expect(downgraded.stderr.join('\n')).toContain('was enrolled over https');
    const agent = await stack.runAgent(stateDir);
    const starting = await agent.waitForLog((l) => l['msg'] === 'agent starting', 'agent start line');
    expect(starting['servers']).toEqual([cp.url]);

    const { done, points } = await backupThrough(agentId, 'zone-ca');
    expect(done).toMatchObject({ state: 'succeeded', error: null });
    expect(points).toHaveLength(1);
    expect(await api.expect(200, 'GET', `/v1/agents/${agentId}`)).toMatchObject({ state: 'connected' });
  });

  it('runs a dummy backup with an agent that pinned the certificate fingerprint at enrollment', async () => {
    const { stateDir, agentId } = await stack.enroll('zone-pin', 'pin-host', [
      // As an operator may type it: lower case, no colons.
      '--fingerprint',
      good.fingerprint
        .toLowerCase()
        .replace(/:/g, '')
        .replace(/^sha256/, 'sha256:'),
    ]);
    expect(storedState(stateDir).serverTrust).toEqual({ fingerprint: good.fingerprint });
    await stack.runAgent(stateDir);

    const { done, points } = await backupThrough(agentId, 'zone-pin');
    expect(done).toMatchObject({ state: 'succeeded', error: null });
    expect(points).toHaveLength(1);
  });

  it('refuses to enroll with a control plane whose certificate fails the CA or the pin, and never sends the token', async () => {
    const token = await enrollmentToken('zone-refused');
    const attempt = async (trust: string[]) => {
      const stateDir = tempDir('agent');
      const proc = await runAgentCommand([
        'enroll',
        ...['--server', impostor.url, '--token', token, '--state-dir', stateDir, ...trust],
      ]);
      expect(fs.existsSync(path.join(stateDir, 'agent.json'))).toBe(false);
      return { code: proc.exitCode, stderr: proc.stderr.join('\n') };
    };

    const wrongCa = await attempt(['--ca-file', good.certFile]);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toContain(`refusing the control plane at ${impostor.url}`);
    expect(wrongCa.stderr).toContain('not trusted by the CA certificate given at enrollment');
    expect(wrongCa.stderr).toContain(`it presented ${other.fingerprint}`);
    expect(wrongCa.stderr).toContain('the token was not sent');

    const wrongPin = await attempt(['--fingerprint', good.fingerprint]);
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.stderr).toContain(
      `the control plane presented certificate ${other.fingerprint}, not the pinned ${good.fingerprint}`,
    );

    // Without a flag the system CAs decide; the refusal shows the fingerprint for the operator
    // to check, and pinning it takes the flag (never trust on first use).
    const noFlag = await attempt([]);
    expect(noFlag.code).toBe(1);
    expect(noFlag.stderr).toContain('not trusted by the system CAs');
    expect(noFlag.stderr).toContain(`--fingerprint ${other.fingerprint}`);

    // None of the three reached the server: the one-time token is still unspent.
    const stateDir = tempDir('agent');
    const ok = await runAgentCommand([
      ...['enroll', '--server', cp.url, '--token', token, '--state-dir', stateDir, '--ca-file', good.certFile],
    ]);
    expect(ok.exitCode, ok.stderr.join('\n')).toBe(0);
    const agentsInZone = (await api.expect(200, 'GET', '/v1/agents?limit=100')).items.filter(
      (a: { zone: string }) => a.zone === 'zone-refused',
    );
    expect(agentsInZone).toHaveLength(1);
  });

  it('refuses to run against a control plane whose certificate fails the CA or the pin, and never sends the credential', async () => {
    for (const [zone, trust, expected] of [
      ['zone-run-ca', ['--ca-file', good.certFile], 'not trusted by the CA certificate given at enrollment'],
      ['zone-run-pin', ['--fingerprint', good.fingerprint], `not the pinned ${good.fingerprint}`],
    ] as const) {
      const { stateDir, agentId } = await stack.enroll(zone, `${zone}-host`, [...trust]);
      // On MySQL the impostor shares the database: the credential would be accepted there if it were sent.
      const agent = await stack.runAgent(stateDir, { args: ['--server', impostor.url], waitConnected: false });
      const refusals = () => agent.logs().filter((l) => String(l['msg']).startsWith('refusing the control plane'));
      // It refuses every retry, and no session ever starts.
      await waitFor(() => refusals().length >= 2, `${zone}: the agent to refuse the impostor twice`);
      const refused = refusals()[0]!;
      expect(refused['level']).toBe(50);
      expect(String(refused['msg'])).toContain(expected);
      expect(String(refused['msg'])).toContain(other.fingerprint);
      expect(String(refused['msg'])).toContain('nothing was sent to it');
      await agent.stop();
      expect(agent.logs().filter((l) => l['msg'] === 'agent connected')).toEqual([]);
      expect(await api.expect(200, 'GET', `/v1/agents/${agentId}`)).toMatchObject({
        state: 'disconnected',
        lastSeenAt: null,
      });
    }
    // Not even a refused (bad) credential reached the impostor's gateway.
    expect(impostor.proc.logs().filter((l) => String(l['msg']).startsWith('agent'))).toEqual([]);
  });
});

describe('TLS settings at start-up', () => {
  it('stops the start with exit 2 and a message naming the setting, before touching the database', async () => {
    const dir = tempDir('tls-bad');
    const a = makeCertificate(dir, 'a');
    const b = makeCertificate(dir, 'b');
    const cases: [Record<string, string>, RegExp][] = [
      [{ CAIRN_TLS_CERT: a.certFile }, /CAIRN_TLS_KEY: required when CAIRN_TLS_CERT is set/],
      [{ CAIRN_TLS_KEY: a.keyFile }, /CAIRN_TLS_CERT: required when CAIRN_TLS_KEY is set/],
      [
        { CAIRN_TLS_CERT: path.join(dir, 'missing.crt'), CAIRN_TLS_KEY: a.keyFile },
        /CAIRN_TLS_CERT: cannot read .*missing\.crt: ENOENT/,
      ],
      [{ CAIRN_TLS_CERT: a.certFile, CAIRN_TLS_KEY: dir }, /CAIRN_TLS_KEY: cannot read .*: EISDIR/],
      [{ CAIRN_TLS_CERT: a.keyFile, CAIRN_TLS_KEY: a.keyFile }, /CAIRN_TLS_CERT: .*a\.key holds no PEM certificate/],
      [
        { CAIRN_TLS_CERT: a.certFile, CAIRN_TLS_KEY: a.certFile },
        /CAIRN_TLS_KEY: .*a\.crt holds no usable PEM private key/,
      ],
      [
        { CAIRN_TLS_CERT: a.certFile, CAIRN_TLS_KEY: b.keyFile },
        /CAIRN_TLS_KEY: .*b\.key is not the private key of the certificate in CAIRN_TLS_CERT/,
      ],
    ];
    for (const [env, message] of cases) {
      const dataDir = tempDir('tls-bad-data');
      const proc = await runControlPlaneCommand({
        ...env,
        CAIRN_DATA_DIR: dataDir,
        CAIRN_DATABASE_URL: `sqlite:${path.join(dataDir, 'cairn.db')}`,
      });
      const stderr = proc.stderr.join('\n');
      expect(proc.exitCode, `${JSON.stringify(env)}: ${stderr}`).toBe(2);
      expect(stderr).toMatch(message);
      expect(fs.existsSync(path.join(dataDir, 'cairn.db')), JSON.stringify(env)).toBe(false);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
