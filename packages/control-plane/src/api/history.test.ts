import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clockEnv, setClock, tickedAt } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { HISTORY_INTERVAL_MS } from '../scheduler/history.js';
import { inProcessFixture } from '../testing/in-process.js';

const DAY = 24 * 3600_000;

/*
 * The history sweep through the API, on the control plane's own scheduler under the test clock:
 * a day after they ended (the limits set to a day), a cancelled task answers 404 and the events
 * logged before the sweep's mark are gone; a task still queued stays. A reader that resumes
 * after a forgotten event is told so (410, and where the kept log begins), on a page and on the
 * stream; a reader from the start, or from where the kept log begins, reads on.
 */
describe.each(backends)('history kept within its limits, through the API (%s)', (backend) => {
  const clockFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-history-')), 'now');
  // Ahead of the real clock: ids made from here on carry the test clock's time.
  const start = Math.ceil((Date.now() + DAY) / HISTORY_INTERVAL_MS) * HISTORY_INTERVAL_MS;
  setClock(clockFile, new Date(start).toISOString());
  const env = inProcessFixture(backend, {
    ...clockEnv(clockFile),
    CAIRN_TASK_HISTORY_DAYS: '1',
    CAIRN_PROGRESS_HISTORY_DAYS: '1',
    CAIRN_EVENT_HISTORY_DAYS: '1',
  });
  let instanceId: string;

  beforeAll(async () => {
    const offeringId = await env.dummyOffering('o');
    instanceId = (await env.admin.expect(201, 'POST', '/v1/instances', { name: 'vm', zone: 'z1', locator: {} })).id;
    await env.admin.expect(200, 'PUT', `/v1/instances/${instanceId}/offering`, { offeringId });
  });

  /** Sets the test clock to `t` and waits for a scheduler tick at that time (its duties ran). */
  async function at(t: number): Promise<void> {
    const iso = new Date(t).toISOString();
    setClock(clockFile, iso);
    await tickedAt(env.cp, iso);
  }

  it('forgets a task and the events a day after, keeps a queued task, and refuses a cursor behind the kept log', async () => {
    const { admin } = env;
    // No agent: the backups stay queued; the first is cancelled (ended now).
    const ended = await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    const queued = await admin.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
    await admin.expect(202, 'POST', `/v1/tasks/${ended.id}/cancel`);
    expect((await admin.expect(200, 'GET', `/v1/tasks/${ended.id}`)).state).toBe('cancelled');
    const before = (await admin.expect(200, 'GET', '/v1/events?after=0&limit=500')).items.map((e: { id: string }) =>
      Number(e.id),
    );
    expect(before.length).toBeGreaterThan(2);

    // The next interval's mark covers every event so far; a day later its pass forgets them.
    await at(start + HISTORY_INTERVAL_MS);
    await at(start + HISTORY_INTERVAL_MS + DAY + 1);
    await admin.expect(404, 'GET', `/v1/tasks/${ended.id}`);
    const metrics = await (await fetch(`${env.cp.url}/metrics`)).text();
    const forgotten = (what: string) =>
      Number(new RegExp(`^cairn_history_forgotten_total\\{what="${what}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(forgotten('tasks')).toBe(1);
    expect(forgotten('events')).toBe(before.length);
    expect((await admin.expect(200, 'GET', `/v1/tasks/${queued.id}`)).state).toBe('queued');

    const kept = (await admin.expect(200, 'GET', '/v1/events?after=0&limit=500')).items.map((e: { id: string }) =>
      Number(e.id),
    );
    const last = Math.max(...before);
    expect(kept.filter((id: number) => id <= last)).toEqual([]);

    // Resuming after a forgotten event: 410 on a page and on the stream, naming where to go on.
    const gone = await admin.expect(410, 'GET', `/v1/events?after=${before[0]}`);
    expect(gone.code).toBe('events_forgotten');
    expect(gone.after).toBeGreaterThanOrEqual(last);
    const stream = await fetch(`${env.cp.url}/v1/events/stream`, {
      headers: { authorization: `Bearer ${env.adminToken}`, 'last-event-id': String(before[0]) },
    });
    expect(stream.status).toBe(410);
    expect(((await stream.json()) as { code: string }).code).toBe('events_forgotten');
    // From where the kept log begins, the reader goes on.
    await admin.expect(200, 'GET', `/v1/events?after=${gone.after}`);
    const resumed = new AbortController();
    const ok = await fetch(`${env.cp.url}/v1/events/stream?after=${gone.after}`, {
      headers: { authorization: `Bearer ${env.adminToken}` },
      signal: resumed.signal,
    });
    expect(ok.status).toBe(200);
    resumed.abort();
  });
});
