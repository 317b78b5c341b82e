import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends, freshDatabase, type TestDatabase } from '@cairn/test-harness/databases';
import { startControlPlane, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { SseClient } from '@cairn/test-harness/sse';
import { waitFor } from '@cairn/test-harness/wait';

interface EventBody {
  id: string;
  type: string;
  message: string;
  data: Record<string, unknown> | null;
}

describe.each(backends)('what a tenant sees of the service provider (%s)', (backend) => {
  let db: TestDatabase;
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let tenantToken: string;

  beforeAll(async () => {
    db = await freshDatabase(backend);
    cp = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir });
    admin = new Api(cp.url, cp.adminToken);
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' });
    tenantToken = (await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name: 'ops' }))
      .token;
    tenant = new Api(cp.url, tenantToken);
    await tenant.expect(201, 'POST', '/v1/instances', { name: 'vm-1', zone: 'zone-a', locator: {} });
  });

  afterAll(async () => {
    await cp?.proc.stop();
    await db?.drop();
  });

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
});
