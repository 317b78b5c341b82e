import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

const PER_SECOND = 1;
const BURST = 5;

/**
 * A tenant's requests beyond its rate are refused before any route or store work, with the
 * time to wait; other tenants and the sp-admin are served as before. Counted as an attacker
 * would send them: as fast as the client can.
 */
describe.each(backends)("a tenant's request rate (%s)", (backend) => {
  const env = inProcessFixture(backend, {
    CAIRN_TENANT_REQUEST_RATE: String(PER_SECOND),
    CAIRN_TENANT_REQUEST_BURST: String(BURST),
  });
  let acmeId: string;
  let acme: Api;
  let bravo: Api;

  beforeAll(async () => {
    const { admin } = env;
    acmeId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' })).id;
    const bravoId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'bravo' })).id;
    const token = async (tenantId: string) =>
      (await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, { role: 'tenant-admin', name: 'a' })).token;
    acme = env.as(await token(acmeId));
    bravo = env.as(await token(bravoId));
  });

  /** Sends `path` as `api` until the first refusal (at most `most` times): how many were served, and the refusal. */
  async function untilRefused(api: Api, method: string, path: string, most: number, body?: unknown) {
    const started = performance.now();
    for (let served = 0; served < most; served++) {
      const r = await api.call(method, path, body);
      if (r.status === 429) return { served, refusal: r, seconds: (performance.now() - started) / 1000 };
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    }
    throw new Error(`${most} requests of ${path} and none refused`);
  }

  it('refuses past the burst with 429 too_many_requests and Retry-After; another tenant and the sp-admin are served', async () => {
    const { served, refusal, seconds } = await untilRefused(acme, 'GET', `/v1/tenants/${acmeId}`, 100);
    // The burst, and at most what refilled meanwhile.
    expect(served).toBeGreaterThanOrEqual(BURST);
    expect(served).toBeLessThanOrEqual(BURST + Math.ceil(PER_SECOND * seconds));
    expect(refusal.headers.get('retry-after')).toBe('1');
    expect(refusal.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refusal.body).toMatchObject({ status: 429, code: 'too_many_requests', quota: 'requestRate' });
    expect((refusal.body as { detail: string }).detail).toContain(acmeId);
    // Another tenant has its own budget; the service provider's admin is not counted.
    await bravo.expect(200, 'GET', '/v1/instances');
    for (let i = 0; i < 3 * BURST; i++) await env.admin.expect(200, 'GET', `/v1/tenants/${acmeId}`);
  });

  it('a refused write changes nothing', async () => {
    const { served, refusal } = await untilRefused(acme, 'POST', `/v1/tenants/${acmeId}/tokens`, 100, {
      role: 'tenant-user',
      name: 'refused',
    });
    expect(refusal.body).toMatchObject({ code: 'too_many_requests' });
    const tokens = (await env.admin.expect(200, 'GET', `/v1/tenants/${acmeId}/tokens?limit=500`)).items as {
      name: string;
    }[];
    // The ones served before the refusal were made; the refused one was not.
    expect(tokens.filter((t) => t.name === 'refused')).toHaveLength(served);
  });
});
