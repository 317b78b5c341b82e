import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { treeState as snapshot } from '@cairn/test-harness/files';
import { hasRestic, initialiseRepository } from '@cairn/test-harness/restic';
import { assignOffering, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

/*
 * A tenant reaches only what the SP gave it, tried as an attacker with a tenant-user token and
 * the real restic plugin: the control plane refuses claims outside the tenant's granted roots
 * (403, nothing written), and the agent refuses whatever the control plane lets through that
 * leaves its own roots: `..`, symlinked parents, its state directory, links planted between a
 * backup and its restore.
 */

const PASSWORD = 'e2e-confinement-password-1f0e';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

describe.runIf(hasRestic).each(backends)('host confinement with restic (%s)', (backend) => {
  const stack = withStack(backend);
  let agentId: string;
  let stateDir: string;
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let otherId: string;
  let providerId: string;
  let offeringId: string;
  const work = stack.tempDir('confine');
  const repo = path.join(work, 'repository');
  const host = path.join(work, 'host');
  const spRoot = path.join(work, 'sp');
  let rootA: string;
  let rootB: string;
  let hostBefore: Record<string, string>;
  // The agent writes its spool and journal all the time; its credential must never change.
  const untouchable = () => ({ ...snapshot(host), ...snapshot(rootB), ...snapshot(path.join(stateDir, 'agent.json')) });

  /** A task started by `api` with `body`, to its end. */
  async function run(api: Api, route: string, body?: unknown): Promise<TaskBody> {
    const started = await api.expect<TaskBody>(202, 'POST', route, body);
    return waitForTask(api, started.id, ENDED, 60_000);
  }
  const instances = async () => ((await admin.expect(200, 'GET', '/v1/instances?limit=500')).items as unknown[]).length;

  beforeAll(async () => {
    admin = stack.admin;
    tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'attacker' })).id;
    otherId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'victim' })).id;
    const token = await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, {
      role: 'tenant-user',
      name: 'attacker-user',
    });
    tenant = stack.api(token.token);

    // The host as the SP laid it out: one directory per tenant, its own files outside them.
    rootA = path.join(work, 'tenants', tenantId);
    rootB = path.join(work, 'tenants', otherId);
    fs.mkdirSync(path.join(rootA, 'data', 'ssh'), { recursive: true });
    fs.writeFileSync(path.join(rootA, 'data', 'ssh', 'authorized_keys'), 'ssh-ed25519 TENANT-KEY\n');
    fs.writeFileSync(path.join(rootA, 'data', 'www.txt'), 'hello\n');
    fs.mkdirSync(path.join(rootB, 'private'), { recursive: true });
    fs.writeFileSync(path.join(rootB, 'private', 'ledger.csv'), 'victim,1000000\n');
    fs.mkdirSync(path.join(host, 'root', '.ssh'), { recursive: true });
    fs.writeFileSync(path.join(host, 'root', '.ssh', 'authorized_keys'), 'ssh-ed25519 ROOT-KEY\n', { mode: 0o600 });
    fs.writeFileSync(path.join(host, 'shadow'), 'root:$6$secret\n', { mode: 0o600 });
    fs.mkdirSync(spRoot);

    const enrolled = await stack.enroll('zone-a', 'restic-host');
    agentId = enrolled.agentId;
    // The agent's state lives inside a root the SP uses for its own instances: its own rule wins.
    stateDir = path.join(spRoot, 'agent-state');
    fs.renameSync(enrolled.stateDir, stateDir);
    await stack.runAgent(stateDir, {
      plugins: '@cairn/plugin-restic',
      args: ['--roots', `${path.join(work, 'tenants', '{tenant}')},${spRoot}`],
    });
    hostBefore = untouchable();

    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'restic',
      plugin: '@cairn/plugin-restic',
      endpoint: repo,
      credentials: { password: PASSWORD },
      tenantLocators: 'granted-roots',
    });
    providerId = provider.id;
    await initialiseRepository(admin, 'zone-a', providerId);
    await admin.expect(200, 'PUT', `/v1/zones/zone-a/providers/${providerId}/tenant-roots/${tenantId}`, {
      roots: [rootA],
    });
    await admin.expect(200, 'PUT', `/v1/zones/zone-a/providers/${providerId}/tenant-roots/${otherId}`, {
      roots: [rootB],
    });
    offeringId = (
      await admin.expect(201, 'POST', '/v1/offerings', {
        name: 'files',
        zone: 'zone-a',
        providerId,
        allowAdhoc: true,
        allowUserSchedules: false,
      })
    ).id;
    await admin.expect(201, 'POST', `/v1/offerings/${offeringId}/grants`, { tenantId });
  });

  it.each([
    ["the agent's state directory (the credential theft)", () => stateDir, 'locator.paths[0]'],
    ['a host directory', () => host, 'locator.paths[0]'],
    ['.. out of its root', () => `${rootA}/../${otherId}/private`, 'locator.paths[0]'],
    ["another tenant's root", () => rootB, 'locator.paths[0]'],
    ['a relative path', () => 'data', 'locator.paths[0]'],
  ])('refuses a tenant locator naming %s: 403, nothing written', async (_, target, field) => {
    const before = await instances();
    const r = await tenant.call('POST', '/v1/instances', {
      name: 'grab',
      zone: 'zone-a',
      locator: { paths: [target()] },
      agentId,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(403);
    expect(r.body).toMatchObject({ code: 'locator_not_granted', errors: [{ path: field }] });
    expect(await instances()).toBe(before);
  });

  it('refuses restore targets outside the tenant roots at the API, and nothing is queued', async () => {
    const id = (
      await tenant.expect(201, 'POST', '/v1/instances', {
        name: 'www',
        zone: 'zone-a',
        locator: { paths: [path.join(rootA, 'data')] },
        agentId,
      })
    ).id;
    await assignOffering(tenant, id, offeringId);
    const done = await run(tenant, `/v1/instances/${id}/backups`, { mode: 'FULL' });
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const tasksBefore = (await admin.expect(200, 'GET', '/v1/tasks?limit=500')).items.length;
    for (const targetPath of [stateDir, host, rootB, `${rootA}/../${otherId}`]) {
      const r = await tenant.call('POST', `/v1/backups/${done.backupId}/restore`, { targetPath });
      expect(r.status, `${targetPath}: ${JSON.stringify(r.body)}`).toBe(403);
      expect(r.body).toMatchObject({ code: 'locator_not_granted', errors: [{ path: 'targetPath' }] });
    }
    expect((await admin.expect(200, 'GET', '/v1/tasks?limit=500')).items.length).toBe(tasksBefore);
  });

  it('a symlinked parent inside the root passes the API but the agent refuses it: nothing of the host is read', async () => {
    fs.symlinkSync(host, path.join(rootA, 'innocent'));
    const id = (
      await tenant.expect(201, 'POST', '/v1/instances', {
        name: 'sneaky',
        zone: 'zone-a',
        locator: { paths: [path.join(rootA, 'innocent', 'root')] },
        agentId,
      })
    ).id;
    await assignOffering(tenant, id, offeringId);
    const done = await run(tenant, `/v1/instances/${id}/backups`, { mode: 'FULL' });
    expect(done).toMatchObject({ state: 'failed', error: { code: 'PATH_NOT_ALLOWED' } });
    expect(done.error!.message).toMatch(/resolves to .*host\/root\) is outside/);
    expect(done.backupId).toBeNull();
  });

  it('a symlink planted between backup and restore is replaced, never written through (in place and to a path)', async () => {
    const data = path.join(rootA, 'data');
    const id = (
      await tenant.expect(201, 'POST', '/v1/instances', {
        name: 'planted',
        zone: 'zone-a',
        locator: { paths: [data] },
        agentId,
      })
    ).id;
    await assignOffering(tenant, id, offeringId);
    const done = await run(tenant, `/v1/instances/${id}/backups`, { mode: 'FULL' });
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');

    // After the backup the tenant swaps its ssh directory for a link to root's.
    fs.rmSync(path.join(data, 'ssh'), { recursive: true });
    fs.symlinkSync(path.join(host, 'root', '.ssh'), path.join(data, 'ssh'));
    const inPlace = await run(tenant, `/v1/backups/${done.backupId}/restore`);
    expect(inPlace.state, JSON.stringify(inPlace.error)).toBe('succeeded');
    expect(fs.lstatSync(path.join(data, 'ssh')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(data, 'ssh', 'authorized_keys'), 'utf8')).toBe('ssh-ed25519 TENANT-KEY\n');

    // A restore target whose path leads through a planted link out of the root.
    fs.symlinkSync(host, path.join(rootA, 'restore-here'));
    const toPath = await run(tenant, `/v1/backups/${done.backupId}/restore`, {
      targetPath: path.join(rootA, 'restore-here', 'x'),
    });
    expect(toPath).toMatchObject({ state: 'failed', error: { code: 'PATH_NOT_ALLOWED' } });

    // And a fair one lands below the tenant's root, where restic's layout puts it.
    const fair = await run(tenant, `/v1/backups/${done.backupId}/restore`, { targetPath: path.join(rootA, 'out') });
    expect(fair.state, JSON.stringify(fair.error)).toBe('succeeded');
    expect(fs.readFileSync(path.join(rootA, 'out', data, 'www.txt'), 'utf8')).toBe('hello\n');
    // No staging directory is left behind.
    expect(fs.readdirSync(rootA).filter((n) => n.startsWith('.cairn-restore-'))).toEqual([]);
  });

  it('the agent has the last word: what an sp-admin asks outside its roots, or of its own state, fails there', async () => {
    for (const [name, paths] of [
      ['host', [host]],
      ['state', [stateDir]],
      ['above-state', [spRoot]],
    ] as const) {
      const id = (
        await admin.expect(201, 'POST', '/v1/instances', {
          name: `sp-${name}`,
          zone: 'zone-a',
          locator: { paths },
          agentId,
          tenantId,
        })
      ).id;
      await assignOffering(admin, id, offeringId);
      const done = await run(admin, `/v1/instances/${id}/backups`, { mode: 'FULL' });
      expect(done, name).toMatchObject({ state: 'failed', error: { code: 'PATH_NOT_ALLOWED' } });
    }
    const [point] = (await tenant.expect(200, 'GET', '/v1/backups?limit=1')).items as { id: string }[];
    for (const targetPath of [stateDir, host, path.join(rootB, 'private')]) {
      const done = await run(admin, `/v1/backups/${point!.id}/restore`, { targetPath });
      expect(done, targetPath).toMatchObject({ state: 'failed', error: { code: 'PATH_NOT_ALLOWED' } });
    }
  });

  it('the host, the other tenant and the agent state are untouched by all of the above', () => {
    expect(untouchable()).toEqual(hostBefore);
  });
});
