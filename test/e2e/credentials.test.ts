import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes, type DecodedFrame } from '@cairn/proto';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { ADMIN_TOKEN, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { agentCredential as storedCredential, upgradeStatus } from '@cairn/test-harness/raw-agent';
import { stackPerTest } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const SECRET_KEY = 'b'.repeat(64);
const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

/**
 * A hand-made agent session: hello with `credential`, collect the server's frames for `ms`, then
 * drop the socket as a crashed agent would (nothing stored).
 */
function rawAgentSession(
  url: string,
  credential: string,
  agent: { agentId: string; zone: string },
  ms: number,
): Promise<DecodedFrame[]> {
  return new Promise((resolve, reject) => {
    const frames: DecodedFrame[] = [];
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('open', () => {
      ws.send(
        encodeFrame({
          hello: {
            protocolVersion: PROTOCOL_VERSION,
            agentId: agent.agentId,
            zone: agent.zone,
            slots: 0,
            plugins: [],
            agentVersion: 'raw',
            hostname: 'raw',
            running: [],
          },
        }),
      );
      setTimeout(() => ws.terminate(), ms);
    });
    ws.on('message', (data) => frames.push(decodeFrame(toBytes(data as Buffer))));
    ws.on('close', () => resolve(frames));
    ws.on('error', (err) => {
      if (!String(err.message).includes('closed before')) reject(err);
    });
  });
}

async function providerTenantId(api: Api): Promise<string> {
  const tenants = await api.expect(200, 'GET', '/v1/tenants?limit=500');
  return (tenants.items as { id: string; name: string }[]).find((t) => t.name === 'service-provider')!.id;
}

describe.each(backends)('revoking and rotating credentials (%s)', (backend) => {
  const newStack = stackPerTest(backend);
  const stackWith = (env: Record<string, string> = {}) => newStack({ env: { CAIRN_SECRET_KEY: SECRET_KEY, ...env } });

  it('a new CAIRN_ADMIN_TOKEN retires the old one at the next start; tokens minted through the API keep working', async () => {
    const stack = await stackWith();
    const { cp, admin } = stack;
    const provider = await providerTenantId(admin);
    const minted = await admin.expect(201, 'POST', `/v1/tenants/${provider}/tokens`, { role: 'sp-admin', name: 'ops' });
    const tenant = await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    const tenantAdmin = await admin.expect(201, 'POST', `/v1/tenants/${tenant.id}/tokens`, {
      role: 'tenant-admin',
      name: 'acme admin',
    });
    await cp.proc.stop();

    const rotated = 'rotated-admin-token-fedcba9876543210';
    const cp2 = await stack.controlPlane({ env: { CAIRN_ADMIN_TOKEN: rotated } });
    expect((await stack.api(ADMIN_TOKEN, cp2).get('/v1/tenants')).status).toBe(401);
    expect((await stack.api(rotated, cp2).get('/v1/tenants')).status).toBe(200);
    expect((await stack.api(minted.token, cp2).get('/v1/tenants')).status).toBe(200);
    expect((await stack.api(tenantAdmin.token, cp2).get(`/v1/tenants/${tenant.id}`)).status).toBe(200);
    const tokens = await stack.api(rotated, cp2).expect(200, 'GET', `/v1/tenants/${provider}/tokens`);
    expect(tokens.items.filter((t: { source: string }) => t.source === 'config')).toHaveLength(1);
    expect(tokens.items.map((t: { id: string }) => t.id)).toContain(minted.id);
  });

  it('lists a tenant’s tokens without secrets, revokes one at once, and keeps roles and tenants apart', async () => {
    const stack = await stackWith();
    const { admin } = stack;
    const t1 = await admin.expect(201, 'POST', '/v1/tenants', { name: 'one' });
    const t2 = await admin.expect(201, 'POST', '/v1/tenants', { name: 'two' });
    const mint = (tenantId: string, role: string, name: string) =>
      admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role, name });
    const a1 = await mint(t1.id, 'tenant-admin', 'a1');
    const u1 = await mint(t1.id, 'tenant-user', 'u1');
    const x1 = await mint(t1.id, 'tenant-user', 'x1');
    const a2 = await mint(t2.id, 'tenant-admin', 'a2');
    const admin1 = stack.api(a1.token);
    const user1 = stack.api(u1.token);
    const admin2 = stack.api(a2.token);

    const page1 = await admin1.expect(200, 'GET', `/v1/tenants/${t1.id}/tokens?limit=2`);
    expect(page1.items).toHaveLength(2);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = await admin1.expect(200, 'GET', `/v1/tenants/${t1.id}/tokens?limit=2&cursor=${page1.nextCursor}`);
    expect(page2.nextCursor).toBeNull();
    const all = [...page1.items, ...page2.items];
    expect(all.map((t: { id: string }) => t.id).sort()).toEqual([a1.id, u1.id, x1.id].sort());
    for (const t of all) {
      expect(Object.keys(t).sort()).toEqual(['createdAt', 'id', 'name', 'role', 'source', 'tenantId']);
      expect(JSON.stringify(t)).not.toContain(a1.token);
    }
    expect((await admin1.get(`/v1/tenants/${t1.id}/tokens?limit=0`)).status).toBe(400);
    expect((await admin1.get(`/v1/tenants/${t1.id}/tokens?cursor=garbage`)).status).toBe(400);

    // A tenant-user may neither list nor revoke; another tenant's admin sees nothing at all.
    expect((await user1.get(`/v1/tenants/${t1.id}/tokens`)).status).toBe(403);
    expect((await user1.call('DELETE', `/v1/tenants/${t1.id}/tokens/${x1.id}`)).status).toBe(403);
    expect((await admin2.get(`/v1/tenants/${t1.id}/tokens`)).status).toBe(404);
    expect((await admin2.call('DELETE', `/v1/tenants/${t1.id}/tokens/${x1.id}`)).status).toBe(404);
    expect((await admin2.call('DELETE', `/v1/tenants/${t2.id}/tokens/${x1.id}`)).status).toBe(404);
    // Nor may a tenant-admin touch the provider's tokens.
    const provider = await providerTenantId(admin);
    expect((await admin1.get(`/v1/tenants/${provider}/tokens`)).status).toBe(404);
    expect((await stack.api(x1.token).get(`/v1/tenants/${t1.id}`)).status).toBe(200);

    expect((await admin1.call('DELETE', `/v1/tenants/${t1.id}/tokens/${u1.id}`)).status).toBe(204);
    expect((await user1.get(`/v1/tenants/${t1.id}`)).status).toBe(401);
    expect((await admin1.call('DELETE', `/v1/tenants/${t1.id}/tokens/${u1.id}`)).status).toBe(404);
    expect((await admin.call('DELETE', `/v1/tenants/${t2.id}/tokens/${a2.id}`)).status).toBe(204);
    expect((await admin2.get(`/v1/tenants/${t2.id}`)).status).toBe(401);
  });

  it('keeps the last sp-admin token, and brings back a deleted CAIRN_ADMIN_TOKEN at the next start', async () => {
    const stack = await stackWith();
    const { cp, admin } = stack;
    const provider = await providerTenantId(admin);
    const [configured] = (await admin.expect(200, 'GET', `/v1/tenants/${provider}/tokens`)).items;
    expect(configured).toMatchObject({ role: 'sp-admin', source: 'config' });
    const last = await admin.call('DELETE', `/v1/tenants/${provider}/tokens/${configured.id}`);
    expect(last.status).toBe(409);
    expect(last.body.code).toBe('last_admin_token');
    expect((await admin.get('/v1/tenants')).status).toBe(200);

    const ops = await admin.expect(201, 'POST', `/v1/tenants/${provider}/tokens`, { role: 'sp-admin', name: 'ops' });
    expect((await admin.call('DELETE', `/v1/tenants/${provider}/tokens/${configured.id}`)).status).toBe(204);
    expect((await admin.get('/v1/tenants')).status).toBe(401);
    const viaOps = stack.api(ops.token);
    expect((await viaOps.call('DELETE', `/v1/tenants/${provider}/tokens/${ops.id}`)).status).toBe(409);
    await cp.proc.stop();

    const cp2 = await stack.controlPlane();
    expect((await stack.api(ADMIN_TOKEN, cp2).get('/v1/tenants')).status).toBe(200);
    expect((await stack.api(ops.token, cp2).get('/v1/tenants')).status).toBe(200);
  });

  it('deleting an agent mid-backup closes its session, refuses its credential, and its task is lost after the lease', async () => {
    const stack = await stackWith({ CAIRN_TASK_LEASE_MS: '3000' });
    const { cp, admin } = stack;
    const { stateDir, agentId } = await stack.enroll('zone-a', 'doomed');
    const agent = await stack.runAgent(stateDir);
    const p = await protectInstance(admin, 'zone-a', { config: { durationMs: 60_000, steps: 60 } });
    const task = await admin.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    await waitForTask(admin, task.id, ['running']);

    expect((await admin.call('DELETE', `/v1/agents/${agentId}`)).status).toBe(204);
    await agent.waitForLog(
      (l) => l['msg'] === 'control plane connection closed' && l['code'] === 4003,
      'the agent session to be closed by the control plane',
    );
    await agent.waitForLog((l) => l['status'] === 401, 'the agent reconnect to be refused with 401');
    expect(await upgradeStatus(cp.url, storedCredential(stateDir).credential)).toBe(401);
    expect((await admin.get(`/v1/agents/${agentId}`)).status).toBe(404);
    expect((await admin.expect(200, 'GET', '/v1/agents')).items).toEqual([]);
    expect((await admin.call('DELETE', `/v1/agents/${agentId}`)).status).toBe(404);

    const lost = await waitForTask(admin, task.id, TERMINAL);
    expect(lost).toMatchObject({ state: 'lost', error: { code: 'AGENT_LOST' } });
    // The task still names the agent that ran it.
    expect((await admin.expect(200, 'GET', `/v1/tasks/${task.id}`)).agentId).toBe(agentId);
  });

  it('rotates an agent credential: the agent stores the new one and says so, the old one is then refused, and it keeps working after a restart', async () => {
    const stack = await stackWith();
    const { cp, admin } = stack;
    const { stateDir, agentId } = await stack.enroll('zone-a', 'rotating');
    const old = storedCredential(stateDir).credential;

    // Requested while the agent is away: pending until it connects.
    const requested = await admin.expect(202, 'POST', `/v1/agents/${agentId}/rotate-credential`);
    expect(requested.credential).toMatchObject({ rotation: 'pending', requestedAt: expect.any(String) });
    let agent = await stack.runAgent(stateDir);
    await agent.waitForLog(
      (l) => l['msg'] === 'agent credential rotated and saved; the next connection uses it',
      'rotation',
    );
    const view = await waitFor(async () => {
      const a = await admin.expect(200, 'GET', `/v1/agents/${agentId}`);
      return a.credential.rotation === 'none' && a.state === 'connected' ? a : undefined;
    }, 'the rotation to complete');
    expect(view.credential.rotatedAt).toEqual(expect.any(String));
    const rotated = storedCredential(stateDir).credential;
    expect(rotated).not.toBe(old);
    expect(JSON.stringify(view)).not.toContain(rotated);
    expect(await upgradeStatus(cp.url, old)).toBe(401);

    const p = await protectInstance(admin, 'zone-a', { config: { durationMs: 200, steps: 2 } });
    const t1 = await admin.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    expect((await waitForTask(admin, t1.id, TERMINAL)).state).toBe('succeeded');

    // Requested while it is connected: it arrives on the live session.
    await admin.expect(202, 'POST', `/v1/agents/${agentId}/rotate-credential`);
    await waitFor(
      async () => (await admin.expect(200, 'GET', `/v1/agents/${agentId}`)).credential.rotation === 'none',
      'the live rotation to complete',
    );
    const third = storedCredential(stateDir).credential;
    expect(third).not.toBe(rotated);
    expect(await upgradeStatus(cp.url, rotated)).toBe(401);

    await agent.stop();
    agent = await stack.runAgent(stateDir);
    const t2 = await admin.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    expect((await waitForTask(admin, t2.id, TERMINAL)).state).toBe('succeeded');
  });

  it('a crash on either side of storing the rotated credential leaves the agent a credential that works', async () => {
    const stack = await stackWith();
    const { cp, admin } = stack;
    const { stateDir, agentId } = await stack.enroll('zone-a', 'crashy');
    const identity = storedCredential(stateDir);
    await admin.expect(202, 'POST', `/v1/agents/${agentId}/rotate-credential`);

    // An agent that receives the new credential and dies before storing it: the old one still
    // works, and the next session offers the very same new credential again.
    const first = await rawAgentSession(cp.url, identity.credential, identity, 1_000);
    const offered = first.find((f) => f.body === 'credential')?.credential?.credential;
    expect(offered).toEqual(expect.any(String));
    const second = await rawAgentSession(cp.url, identity.credential, identity, 1_000);
    expect(second.find((f) => f.body === 'credential')?.credential?.credential).toBe(offered);
    // An agent that stored it and dies before using it: the new one works (and retires the old).
    const third = await rawAgentSession(cp.url, offered!, identity, 500);
    expect(third.some((f) => f.body === 'welcome')).toBe(true);
    expect(third.some((f) => f.body === 'credential')).toBe(false);
    expect(await upgradeStatus(cp.url, identity.credential)).toBe(401);
    fs.writeFileSync(path.join(stateDir, 'agent.json'), JSON.stringify({ ...identity, credential: offered }));

    // A real agent killed -9 at points around a rotation always comes back.
    for (const killAt of ['request', 'sent', 'saved']) {
      const agent = await stack.runAgent(stateDir);
      const sent = () => cp.proc.logs().filter((l) => l['msg'] === 'rotated credential sent to the agent').length;
      const sentBefore = sent();
      await admin.expect(202, 'POST', `/v1/agents/${agentId}/rotate-credential`);
      if (killAt === 'sent') await waitFor(() => sent() > sentBefore, 'the credential to be sent');
      if (killAt === 'saved')
        await agent.waitForLog((l) => String(l['msg']).startsWith('agent credential rotated and saved'), 'saved');
      await agent.kill9();
      const again = await stack.runAgent(stateDir);
      await waitFor(
        async () => (await admin.expect(200, 'GET', `/v1/agents/${agentId}`)).credential.rotation === 'none',
        `the rotation to complete after a kill at "${killAt}"`,
      );
      const p = await protectInstance(admin, 'zone-a', { config: { durationMs: 100, steps: 1 } });
      const t = await admin.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
      expect((await waitForTask(admin, t.id, TERMINAL)).state).toBe('succeeded');
      await again.stop();
    }
  });
});

// A revocation made through one replica holds on the other within the bound: each replica keeps
// who a token is in memory and looks for removed tokens at most every CAIRN_AUTH_CACHE_MS, so a
// request made that long after the revocation answered is refused everywhere. MySQL only, as
// replicas share a MySQL database.
describe.runIf(backends.includes('mysql'))('revocation across two replicas (mysql)', () => {
  const newStack = stackPerTest('mysql');

  it('a token revoked on one replica is refused by the other, and an agent deleted there loses its session here', async () => {
    const bound = 1000;
    const stack = await newStack({
      replicas: 2,
      env: { CAIRN_SECRET_KEY: SECRET_KEY, CAIRN_AUTH_CACHE_MS: String(bound) },
    });
    const [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
    const viaA = stack.adminOf(a);
    const viaB = stack.adminOf(b);

    const tenant = await viaA.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    const token = await viaA.expect(201, 'POST', `/v1/tenants/${tenant.id}/tokens`, { role: 'tenant-user', name: 'u' });
    expect((await stack.api(token.token, b).get(`/v1/tenants/${tenant.id}`)).status).toBe(200);
    expect((await viaA.call('DELETE', `/v1/tenants/${tenant.id}/tokens/${token.id}`)).status).toBe(204);
    expect((await stack.api(token.token, a).get(`/v1/tenants/${tenant.id}`)).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, bound));
    expect((await stack.api(token.token, b).get(`/v1/tenants/${tenant.id}`)).status).toBe(401);

    // The agent's session lives on A; it is deleted through B.
    const { stateDir, agentId } = await stack.enroll('zone-a', 'far');
    const agent = await stack.runAgent(stateDir);
    expect((await viaB.call('DELETE', `/v1/agents/${agentId}`)).status).toBe(204);
    await agent.waitForLog(
      (l) => l['msg'] === 'control plane connection closed' && l['code'] === 4003,
      'the session on the other replica to close at its next heartbeat',
    );
    expect(await upgradeStatus(a.url, storedCredential(stateDir).credential)).toBe(401);
    expect((await viaA.get(`/v1/agents/${agentId}`)).status).toBe(404);
  });
});
