import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { tempDir, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { hasRestic } from '@cairn/test-harness/restic';
import { assignOffering, waitForTask } from '@cairn/test-harness/scenario';
import { SseClient } from '@cairn/test-harness/sse';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];
/** A repository's password that restic takes only inside the URL (rest-server's HTTP basic auth). */
const URL_PASSWORD = 'Rest-Server-Passw0rd-51c2';
const SP_HOST = 'backup.sp.example:8000';
const SP_ENDPOINT = `rest:https://cairn:${URL_PASSWORD}@${SP_HOST}/tenants/acme`;
/** What a plugin might say about that repository: its URL (password masked), path, user@host. */
const PLUGIN_SAYS = `repository rest:https://cairn:***@${SP_HOST}/tenants/acme/ is locked: lock /tenants/acme/locks/ab12 held by cairn@backup.sp.example`;
const TENANT_READS = 'repository <repository>/ is locked: lock <repository>/locks/ab12 held by <repository>';

interface EventBody {
  id: string;
  type: string;
  message: string;
  data: Record<string, unknown> | null;
}

describe.each(backends)('what a tenant sees of the service provider (%s)', (backend) => {
  const stack = withStack(backend);
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let tenantToken: string;
  let agentId: string;
  let tenantId: string;
  // The host directories the agent lets plugins touch.
  const roots = tempDir('tenant-view-roots');

  beforeAll(async () => {
    ({ cp, admin } = stack);
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    tenantToken = (await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name: 'ops' }))
      .token;
    tenant = stack.api(tenantToken);
    tenantId = t.id;
    // The SP sets the tenant's locators here (the default): a tenant instance in the zone.
    await admin.expect(201, 'POST', '/v1/instances', { name: 'vm-1', zone: 'zone-a', locator: {}, tenantId });
    // What opens zone-a (its maintenance) to the tenant: an offering there granted to it.
    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'dummy-offered',
      plugin: '@cairn/plugin-dummy',
      config: {},
      credentials: { secret: 's3cret' },
    });
    const offered = await admin.expect(201, 'POST', '/v1/offerings', {
      name: 'offered',
      zone: 'zone-a',
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${offered.id}/grants`, { tenantId });
    ({ agentId } = await stack.addAgent({
      name: 'host-a',
      plugins: hasRestic ? '@cairn/plugin-dummy,@cairn/plugin-restic' : '@cairn/plugin-dummy',
      roots: [roots],
    }));
  });

  /** An sp-admin's offering on `providerId`, granted to the tenant, and a tenant instance on it. */
  const tenantInstance = async (providerId: string, name: string, locator: unknown = {}) => {
    const offering = await admin.expect(201, 'POST', '/v1/offerings', {
      name,
      zone: 'zone-a',
      providerId,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    await admin.expect(201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId });
    const instance = await admin.expect(201, 'POST', '/v1/instances', {
      name,
      zone: 'zone-a',
      locator,
      agentId,
      tenantId,
    });
    await assignOffering(tenant, instance.id, offering.id);
    return instance.id as string;
  };

  it('shows a tenant maintenance windows without the SP token that set them (setBy null), in states and events', async () => {
    await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: 'global work' });
    await admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: true, message: 'zone work' });
    try {
      const asAdmin = await admin.expect(200, 'GET', '/v1/maintenance');
      expect(asAdmin.setBy).toMatchObject({ role: 'sp-admin', tokenId: expect.any(String) });
      const spTokenId = asAdmin.setBy.tokenId as string;
      expect((await admin.expect(200, 'GET', '/v1/zones/zone-a/maintenance')).setBy.tokenId).toBe(spTokenId);

      for (const route of ['/v1/maintenance', '/v1/zones/zone-a/maintenance']) {
        const r = await tenant.get(route);
        expect(r.status, route).toBe(200);
        expect(r.body).toMatchObject({ enabled: true, setBy: null });
        expect(JSON.stringify(r.body), route).not.toContain(spTokenId);
      }

      const isMaintenance = (e: EventBody) => e.type.startsWith('maintenance.');
      const tenantEvents = (await tenant.expect(200, 'GET', '/v1/events?limit=500')).items as EventBody[];
      expect(tenantEvents.filter(isMaintenance).length).toBeGreaterThanOrEqual(2);
      for (const e of tenantEvents.filter(isMaintenance)) expect(e.data?.['setBy'], e.type).toBeNull();
      expect(JSON.stringify(tenantEvents)).not.toContain(spTokenId);

      const stream = await SseClient.open(cp.url, tenantToken, { query: '?after=0' });
      try {
        await waitFor(
          () => stream.events.filter((e) => e.event.startsWith('maintenance.')).length >= 2,
          'maintenance events on the stream',
        );
        expect(JSON.stringify(stream.events)).not.toContain(spTokenId);
      } finally {
        stream.close();
      }

      // The SP itself sees who did it.
      const adminEvents = (await admin.expect(200, 'GET', '/v1/events?limit=500')).items as EventBody[];
      const enabled = adminEvents.find((e) => e.type === 'maintenance.enabled')!;
      expect(enabled.data?.['setBy']).toMatchObject({ tokenId: spTokenId });
    } finally {
      await admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: false });
      await admin.expect(200, 'PUT', '/v1/maintenance', { enabled: false });
    }
  });

  it('keeps a password in an endpoint sealed and never answers it; an echoed endpoint keeps it', async () => {
    const created = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'rest-server',
      plugin: '@cairn/plugin-dummy',
      endpoint: SP_ENDPOINT,
    });
    const shown = `rest:https://cairn:***@${SP_HOST}/tenants/acme`;
    expect(created.endpoint).toBe(shown);
    const answers = [
      created,
      await admin.expect(200, 'GET', `/v1/zones/zone-a/providers/${created.id}`),
      await admin.expect(200, 'GET', '/v1/zones/zone-a/providers?limit=500'),
      await admin.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${created.id}`, { name: 'rest-server-2' }),
    ];
    for (const a of answers) expect(JSON.stringify(a)).not.toContain(URL_PASSWORD);

    const { openStore } = await import('@cairn/control-plane');
    const store = openStore(stack.db.url);
    const row = () =>
      store.db
        .selectFrom('providers')
        .select(['endpoint', 'endpointEnc'])
        .where('id', '=', created.id)
        .executeTakeFirstOrThrow();
    try {
      const stored = await row();
      expect(stored.endpoint).toBe(shown);
      expect(stored.endpointEnc).not.toBeNull();
      expect(stored.endpointEnc).not.toContain(URL_PASSWORD);
      // A client that sends back the endpoint it was shown changes nothing.
      const echoed = await admin.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${created.id}`, { endpoint: shown });
      expect(echoed.endpoint).toBe(shown);
      expect(await row()).toEqual(stored);
      // A new endpoint without a password drops the sealed one.
      await admin.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${created.id}`, { endpoint: '/srv/plain' });
      expect(await row()).toEqual({ endpoint: '/srv/plain', endpointEnc: null });
    } finally {
      await store.close();
    }
  });

  it('shows a tenant task errors and events without the SP repository endpoint; an sp-admin reads them whole', async () => {
    const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'locked-repo',
      plugin: '@cairn/plugin-dummy',
      endpoint: SP_ENDPOINT,
      config: { durationMs: 100, steps: 2, failCode: 'REPOSITORY_LOCKED', failMessage: PLUGIN_SAYS },
    });
    const instanceId = await tenantInstance(provider.id, 'locked');
    const stream = await SseClient.open(cp.url, tenantToken);
    try {
      await stream.positioned();
      const started = await tenant.expect(202, 'POST', `/v1/instances/${instanceId}/backups`, {});
      const failed = await waitForTask(tenant, started.id, ENDED);
      expect(failed.state).toBe('failed');
      expect(failed.error).toEqual({ code: 'REPOSITORY_LOCKED', message: TENANT_READS });
      await waitFor(() => stream.events.some((e) => e.event === 'task.failed'), 'task.failed on the stream');

      const leaks = ['backup.sp.example', '/tenants/acme', 'cairn@', URL_PASSWORD];
      const tenantReads = {
        task: await tenant.expect(200, 'GET', `/v1/tasks/${started.id}`),
        tasks: await tenant.expect(200, 'GET', `/v1/tasks?instanceId=${instanceId}`),
        events: await tenant.expect(200, 'GET', '/v1/events?limit=500'),
        stream: stream.events,
      };
      for (const [what, body] of Object.entries(tenantReads)) {
        const text = JSON.stringify(body);
        for (const leak of leaks) expect(text, `${what} names ${leak}`).not.toContain(leak);
      }
      expect(JSON.stringify(tenantReads.events)).toContain(TENANT_READS);

      const asAdmin = await admin.expect(200, 'GET', `/v1/tasks/${started.id}`);
      expect(asAdmin.error.message).toBe(PLUGIN_SAYS);
      const adminEvents = JSON.stringify(await admin.expect(200, 'GET', '/v1/events?limit=500'));
      expect(adminEvents).toContain(PLUGIN_SAYS.replace(/"/g, '\\"'));
    } finally {
      stream.close();
    }
  });

  it.runIf(hasRestic)(
    'hands the agent the whole endpoint (restic authenticates with its password) while the tenant reads <repository>',
    async () => {
      const seen: string[] = [];
      // A stand-in rest-server: it records how restic authenticates, and refuses to make the repository.
      const server = http.createServer((req, res) => {
        seen.push(req.headers.authorization ?? '');
        res.statusCode = req.method === 'POST' ? 403 : 404;
        res.end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        const provider = await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
          name: 'restic-rest',
          plugin: '@cairn/plugin-restic',
          endpoint: `rest:http://cairn:${URL_PASSWORD}@127.0.0.1:${port}/acme-repo`,
          credentials: { password: 'repository-password' },
        });
        expect(provider.endpoint).toBe(`rest:http://cairn:***@127.0.0.1:${port}/acme-repo`);
        const instanceId = await tenantInstance(provider.id, 'restic-files', { paths: [roots] });
        const started = await tenant.expect(202, 'POST', `/v1/instances/${instanceId}/backups`, {});
        const failed = await waitForTask(tenant, started.id, ENDED, 60_000);
        expect(failed.state).toBe('failed');
        expect(seen).toContain(`Basic ${Buffer.from(`cairn:${URL_PASSWORD}`).toString('base64')}`);

        const asAdmin = await admin.expect(200, 'GET', `/v1/tasks/${started.id}`);
        expect(asAdmin.error.message).toContain(`127.0.0.1:${port}/acme-repo`);
        const tenantText = JSON.stringify([
          failed,
          await tenant.expect(200, 'GET', `/v1/events?limit=500`),
          await tenant.expect(200, 'GET', `/v1/tasks/${started.id}/progress`),
        ]);
        expect(tenantText).toContain('<repository>');
        for (const leak of [`127.0.0.1:${port}`, '/acme-repo', URL_PASSWORD]) expect(tenantText).not.toContain(leak);
      } finally {
        server.close();
      }
    },
    90_000,
  );
});
