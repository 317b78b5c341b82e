import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';

describe.each(backends)('Idempotency-Key on creating calls (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let api: Api;

  beforeAll(() => {
    api = env.admin;
  });

  it('runs a creating call once and replays its answer for a retry with the same key', async () => {
    const first = await api.call('POST', '/v1/tenants', { name: 'acme' }, { 'Idempotency-Key': 'create-acme-1' });
    expect(first.status).toBe(201);
    const retry = await api.call('POST', '/v1/tenants', { name: 'acme' }, { 'Idempotency-Key': 'create-acme-1' });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    const tenants = await api.expect(200, 'GET', '/v1/tenants');
    expect(tenants.items.filter((t: { name: string }) => t.name === 'acme')).toHaveLength(1);
  });

  it('refuses the same key with a different request (422) and changes nothing', async () => {
    await api.call('POST', '/v1/tenants', { name: 'globex' }, { 'Idempotency-Key': 'k-2' });
    const reused = await api.call('POST', '/v1/tenants', { name: 'initech' }, { 'Idempotency-Key': 'k-2' });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('idempotency_key_reused');
    const names = (await api.expect(200, 'GET', '/v1/tenants')).items.map((t: { name: string }) => t.name);
    expect(names).not.toContain('initech');
  });

  it('forgets a key whose request failed, so the client can retry it', async () => {
    const bad = await api.call('POST', '/v1/tenants', { name: '' }, { 'Idempotency-Key': 'k-3' });
    expect(bad.status).toBe(400);
    const good = await api.call('POST', '/v1/tenants', { name: 'umbrella' }, { 'Idempotency-Key': 'k-3' });
    expect(good.status).toBe(201);
  });

  it('rejects a malformed key with 400', async () => {
    const r = await api.call('POST', '/v1/tenants', { name: 'x' }, { 'Idempotency-Key': 'bad key with spaces' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].path).toBe('header.Idempotency-Key');
  });

  it('keeps keys apart per token', async () => {
    const t = await api.expect(201, 'POST', '/v1/tenants', { name: 'tenant-two' });
    const tok = await api.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-admin', name: 'ops' });
    const tenantApi = env.as(tok.token);
    const mine = await tenantApi.call(
      'POST',
      `/v1/tenants/${t.id}/tokens`,
      { role: 'tenant-user', name: 'u' },
      { 'Idempotency-Key': 'create-acme-1' },
    );
    expect(mine.status).toBe(201);
    expect(mine.headers.get('idempotent-replayed')).toBeNull();
  });
});
