import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeFrame } from '@cairn/proto';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { runAgentCommand, type ControlPlaneProc, type Proc } from '@cairn/test-harness/processes';
import { agentCredential } from '@cairn/test-harness/raw-agent';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

interface Closed {
  code: number;
  reason: string;
}

/** Opens a raw agent socket, sends `frames` after open, resolves with how the server closed it. */
function rawSession(url: string, credential: string, frames: (Buffer | Uint8Array | string)[]): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    ws.on('open', () => {
      for (const f of frames) ws.send(f);
    });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('error', reject);
  });
}

describe.each(backends)('bad input gets a clean error and the server keeps serving (%s)', (backend) => {
  const stack = withStack(backend, {
    // One credential opens one raw session after another here, faster than reconnects are
    // paced; the pacing itself is agent-budget.test.ts's to show.
    env: { CAIRN_AGENT_RECONNECT_MS: '0' },
    agents: [{ name: 'good-host' }],
  });
  let cp: ControlPlaneProc;
  let api: Api;
  let agent: Proc;
  let spare: { credential: string; agentId: string };

  beforeAll(async () => {
    cp = stack.cp;
    api = stack.admin;
    agent = stack.agent.proc;
    // An enrolled agent that never runs: its credential drives the raw sockets below.
    const other = await stack.enroll('zone-b', 'raw-host');
    spare = { credential: agentCredential(other.stateDir).credential, agentId: other.agentId };
  });

  it('closes a session that sends a frame that does not decode (1007) and logs why', async () => {
    const closed = await rawSession(cp.url, spare.credential, [Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(closed.code).toBe(1007);
    expect(closed.reason).toMatch(/does not decode/);
    await cp.proc.waitForLog(
      (l) => /closing agent session: frame does not decode/.test(String(l['msg'])),
      'a log line naming the bad frame',
    );
  });

  it('closes a session whose first frame is not hello (1008)', async () => {
    const frame = encodeFrame({ progress: { spoolSeq: 1, taskId: 'tsk_x', attempt: 1, percent: 5 } });
    const closed = await rawSession(cp.url, spare.credential, [frame]);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/expected hello/);
  });

  it('closes a session whose hello names another agent (1008)', async () => {
    const frame = encodeFrame({ hello: { protocolVersion: 1, agentId: 'agt_someoneelse', zone: 'zone-b', slots: 1 } });
    const closed = await rawSession(cp.url, spare.credential, [frame]);
    expect(closed.code).toBe(1008);
  });

  it('closes a session that speaks another protocol version, or says hello twice (1008)', async () => {
    const v2 = encodeFrame({ hello: { protocolVersion: 2, agentId: spare.agentId, zone: 'zone-b', slots: 1 } });
    const closedV2 = await rawSession(cp.url, spare.credential, [v2]);
    expect(closedV2.code).toBe(1008);
    expect(closedV2.reason).toMatch(/protocol version 2/);
    const hello = encodeFrame({ hello: { protocolVersion: 1, agentId: spare.agentId, zone: 'zone-b', slots: 1 } });
    const twice = await rawSession(cp.url, spare.credential, [hello, hello]);
    expect(twice.code).toBe(1008);
    expect(twice.reason).toMatch(/hello sent twice/);
  });

  it('closes a session whose agent sends a server-only frame (1008)', async () => {
    const hello = encodeFrame({ hello: { protocolVersion: 1, agentId: spare.agentId, zone: 'zone-b', slots: 1 } });
    const assign = encodeFrame({ assign: { taskId: 'tsk_x', attempt: 1, operation: 'backup' } });
    const closed = await rawSession(cp.url, spare.credential, [hello, assign]);
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/may not send assign/);
  });

  it('closes a session that sends a frame over the size limit (1009)', async () => {
    const closed = await rawSession(cp.url, spare.credential, [Buffer.alloc(2 * 1024 * 1024, 1)]);
    expect(closed.code).toBe(1009);
    await cp.proc.waitForLog(
      (l) => /closing agent session: frame over the \d+-byte limit/.test(String(l['msg'])),
      'a log line naming the oversize frame',
    );
  });

  it('closes a session that sends text frames (1003)', async () => {
    const closed = await rawSession(cp.url, spare.credential, ['{"hello":{}}']);
    expect(closed.code).toBe(1003);
  });

  it('refuses an agent socket with a wrong credential (401) before any frame', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${cp.url.replace(/^http/, 'ws')}/v1/agent`, {
        headers: { authorization: 'Bearer agent_wrong' },
      });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('a wrong credential opened a session')));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('answers a bad JSON body with 400 problem+json and writes nothing', async () => {
    const before = (await api.expect(200, 'GET', '/v1/instances')).items.length;
    const res = await api.call('POST', '/v1/instances', '{"name": "vm-1", "zone": ');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, code: 'malformed_json' });
    const invalid = await api.post('/v1/instances', { name: '', zone: 'Not A Zone', locator: {}, extra: 1 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe('invalid_input');
    expect(invalid.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['name', 'zone']));
    expect((await api.expect(200, 'GET', '/v1/instances')).items.length).toBe(before);
  });

  it('takes an empty JSON body as {} where the body is optional, and still refuses a malformed one', async () => {
    const p = await protectInstance(api, 'zone-a');
    const empty = (method: string, route: string) => api.call(method, route, '');
    const backup = await empty('POST', `/v1/instances/${p.instanceId}/backups`);
    expect(backup.status, JSON.stringify(backup.body)).toBe(202);
    const task = backup.body.id as string;
    const cancel = await empty('POST', `/v1/tasks/${task}/cancel`);
    expect(cancel.status, JSON.stringify(cancel.body)).not.toBe(400);
    const sync = await empty('POST', `/v1/zones/zone-a/providers/${p.providerId}/sync`);
    expect(sync.status, JSON.stringify(sync.body)).toBe(202);
    const preflight = await empty('POST', `/v1/zones/zone-a/providers/${p.providerId}/preflight`);
    expect([200, 202], JSON.stringify(preflight.body)).toContain(preflight.status);
    // A body that is there but is not JSON stays a 400, and starts nothing.
    const tasks = (await api.expect(200, 'GET', '/v1/tasks?limit=500')).items.length;
    for (const body of ['{', ' ', 'null x']) {
      const bad = await api.call('POST', `/v1/instances/${p.instanceId}/backups`, body);
      expect(bad.status, body).toBe(400);
      expect(bad.body.code, body).toBe('malformed_json');
    }
    // Where a body is required, an empty one is refused, naming what is missing.
    const tenant = await empty('POST', '/v1/tenants');
    expect(tenant.status).toBe(400);
    expect(tenant.body.errors.map((e: { path: string }) => e.path)).toContain('name');
    expect((await api.expect(200, 'GET', '/v1/tasks?limit=500')).items.length).toBe(tasks);
  });

  it('answers a wrong or missing token with 401 and an unknown id with 404', async () => {
    const wrong = await new Api(cp.url, 'cairn_not-a-token').get('/v1/tasks');
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('unauthorized');
    const none = await fetch(`${cp.url}/v1/tasks`);
    expect(none.status).toBe(401);
    for (const p of [
      '/v1/tasks/tsk_01m8000000000000000000000',
      '/v1/instances/ins_01m8000000000000000000000',
      '/v1/backups/nonsense',
      '/v1/agents/agt_01m8000000000000000000000',
    ]) {
      const r = await api.get(p);
      expect(r.status, p).toBe(404);
      expect(r.body.code).toBe('not_found');
    }
  });

  it('refuses a spent enrollment token', async () => {
    const { token } = await api.expect(201, 'POST', '/v1/agent-enrollments', { zone: 'zone-c' });
    const enroll = () =>
      runAgentCommand(['enroll', '--server', cp.url, '--token', token, '--state-dir', stack.tempDir('enroll')]);
    const first = await enroll();
    expect(first.exitCode).toBe(0);
    const second = await enroll();
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr.join('\n')).toMatch(/already used/);
    const http = await fetch(`${cp.url}/v1/agents/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    expect(http.status).toBe(401);
  });

  it('counts the sessions it closed for protocol violations', async () => {
    const text = await (await fetch(`${cp.url}/metrics`)).text();
    expect(Number(/^cairn_agent_session_errors_total\{code="1007"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^cairn_agent_session_errors_total\{code="1008"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
    expect(Number(/^cairn_agent_session_errors_total\{code="1009"\} (\d+)/m.exec(text)?.[1])).toBe(1);
  });

  it('still serves the healthy agent and API clients after all of the above', async () => {
    expect(agent.running).toBe(true);
    expect((await fetch(`${cp.url}/readyz`)).status).toBe(200);
    const p = await protectInstance(api, 'zone-a', { config: { durationMs: 200, steps: 3 } });
    const task = (await api.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`)) as { id: string };
    expect((await waitForTask(api, task.id, ['succeeded', 'failed', 'cancelled', 'lost'])).state).toBe('succeeded');
  });
});
