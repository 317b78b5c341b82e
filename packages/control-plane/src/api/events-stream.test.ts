import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { inProcessFixture } from '../testing/in-process.js';
import type { ControlPlane } from '../server.js';

interface SseMessage {
  id: string;
  event: string;
  data: { taskId: string | null; tenantId: string; type: string };
}

/** Opens the stream and collects messages until `want` of them arrived, then hangs up. */
async function collect(url: string, token: string, want: number, headers: Record<string, string> = {}, query = '') {
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/events/stream${query}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const messages: SseMessage[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    while (messages.length < want) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((l) => !l.startsWith(':'))
            .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]),
        );
        if (fields['data'])
          messages.push({ id: fields['id'] ?? '', event: fields['event'] ?? '', data: JSON.parse(fields['data']) });
      }
    }
  } finally {
    abort.abort();
  }
  return messages;
}

/** The id of the last event `api` can see ('0' when none). */
async function lastId(api: Api): Promise<string> {
  let cursor = '0';
  for (;;) {
    const page = await api.expect(200, 'GET', `/v1/events?after=${cursor}&limit=500`);
    if (!page.nextCursor) return cursor;
    cursor = page.nextCursor;
  }
}

describe.each(backends)('live event stream (%s)', (backend) => {
  const env = inProcessFixture(backend);
  let cp: ControlPlane;
  let admin: Api;
  let instanceId: string;

  beforeAll(async () => {
    cp = env.cp;
    admin = env.admin;
    const offeringId = await env.dummyOffering('o');
    instanceId = (await admin.expect(201, 'POST', '/v1/instances', { name: 'vm', zone: 'z1', locator: {} })).id;
    await admin.expect(200, 'PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
  });

  it('streams events as they happen and resumes exactly after Last-Event-ID', async () => {
    const before = await lastId(admin);
    const first = await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    const live = collect(cp.url, env.adminToken, 2, {}, `?after=${before}`);
    const second = await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    const got = await live;
    expect(got.map((m) => [m.event, m.data.taskId])).toEqual([
      ['task.queued', first.id],
      ['task.queued', second.id],
    ]);
    expect(Number(got[1]!.id)).toBeGreaterThan(Number(got[0]!.id));

    const third = await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    const resumed = await collect(cp.url, env.adminToken, 1, { 'Last-Event-ID': got[1]!.id });
    expect(resumed.map((m) => m.data.taskId)).toEqual([third.id]);
  });

  it('shows a tenant only its own events', async () => {
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: 'other' });
    const tok = await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-user', name: 'u' });
    const own = await admin.expect(201, 'POST', '/v1/instances', {
      name: 'theirs',
      zone: 'z1',
      locator: {},
      tenantId: t.id,
    });
    const offering = (await admin.expect(200, 'GET', '/v1/offerings')).items[0];
    await admin.expect(201, 'POST', `/v1/offerings/${offering.id}/grants`, { tenantId: t.id });
    await admin.expect(200, 'PUT', `/v1/instances/${own.id}/offering`, { offeringId: offering.id });
    const theirs = await admin.expect(202, 'POST', `/v1/instances/${own.id}/backups`);
    // after=0 replays the tenant's log from the beginning.
    const seen = await collect(cp.url, tok.token, 1, {}, '?after=0');
    expect(seen.map((m) => [m.data.tenantId, m.data.taskId])).toEqual([[t.id, theirs.id]]);
  });

  it('gives every listener every event once and in order, whether it was live or caught up while others listened', async () => {
    const cursor = await lastId(admin);
    const live = collect(cp.url, env.adminToken, 6, { 'Last-Event-ID': cursor });
    const created: string[] = [];
    const backup = async () =>
      created.push((await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)).id as string);
    for (let i = 0; i < 3; i++) await backup();
    // This listener first catches up on its own, then joins the feed the first one is on.
    const late = collect(cp.url, env.adminToken, 6, { 'Last-Event-ID': cursor });
    for (let i = 0; i < 3; i++) await backup();
    for (const got of [await live, await late]) {
      expect(got.map((m) => m.data.taskId)).toEqual(created);
      const ids = got.map((m) => Number(m.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(6);
    }
  });

  it('refuses a stream without a valid token', async () => {
    const res = await fetch(`${cp.url}/v1/events/stream`, { headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(401);
  });
});
