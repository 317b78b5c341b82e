import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '@cairn/control-plane';
import type { Api } from '@cairn/test-harness/api';
import { backupTasks } from '@cairn/test-harness/clock';
import { backends } from '@cairn/test-harness/databases';
import { scheduledInstance } from '@cairn/test-harness/schedules';
import { withStack, type Stack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/*
 * A scheduler tick asks the store what is due only when its answer can have changed: this process
 * committed a change to a schedule (or to what the RPO watch reads), a fire time it knows of came,
 * the tick before fired, or CAIRN_SCHEDULER_REFRESH_MS passed (other replicas' changes).
 */

const T0 = '2026-06-01T12:00:00Z';
const at = (hhmmss: string) => `2026-06-01T${hhmmss}Z`;

/** The scheduler's asks of the store so far (`cairn_scheduler_probe_duration_seconds`). */
async function asks(stack: Stack): Promise<number> {
  const text = await (await fetch(`${stack.cp.url}/metrics`)).text();
  const m = /^cairn_scheduler_probe_duration_seconds_count (\S+)$/m.exec(text);
  if (!m) throw new Error('no cairn_scheduler_probe_duration_seconds_count in /metrics');
  return Number(m[1]);
}

const upcoming = async (admin: Api, id: string): Promise<string | undefined> =>
  ((await admin.expect(200, 'GET', '/v1/schedules?limit=100')).items as { id: string; nextRunAt: string }[]).find(
    (s) => s.id === id,
  )?.nextRunAt;

describe.each(backends)('the scheduler asks its store only when the answer can have changed (%s)', (backend) => {
  // No refresh within the test, and no periodic sync or prune writing tasks and events: every ask
  // it sees has a cause of this process's own.
  const stack = withStack(backend, {
    clockAt: T0,
    env: { CAIRN_SCHEDULER_REFRESH_MS: '600000', CAIRN_SYNC_INTERVAL_S: '0', CAIRN_PRUNE_INTERVAL_S: '0' },
  });
  let id: string;

  beforeAll(async () => {
    ({ instanceId: id } = await scheduledInstance(stack.admin));
  });

  it('asks nothing while idle; a schedule set through the API is read at the next tick; its fire time is not waited for', async () => {
    await stack.step(at('12:00:01'));
    const idle = await asks(stack);
    for (const t of ['12:00:02', '12:00:03', '12:05:00']) await stack.step(at(t));
    expect(await asks(stack), 'asks over three idle ticks').toBe(idle);

    await stack.admin.expect(200, 'PUT', `/v1/instances/${id}/schedule`, {
      cron: '30 12 * * *',
      timezone: 'UTC',
      keepLast: 1,
    });
    // The tick after the change asks (a schedule without a next fire time is due: that tick
    // computes it), and so does the one after it (a tick that found something due asks again).
    await stack.step(at('12:05:01'));
    await stack.step(at('12:05:02'));
    expect(await asks(stack)).toBe(idle + 2);
    expect(await upcoming(stack.admin, id)).toBe('2026-06-01T12:30:00.000Z');
    for (const t of ['12:10:00', '12:20:00', '12:29:59']) await stack.step(at(t));
    expect(await asks(stack), 'asks before the known fire time').toBe(idle + 2);
    expect(await backupTasks(stack.admin, id)).toHaveLength(0);

    // The fire time it knew of: asked and fired with nothing else changed; the tick after asks
    // again (fire times moved); then nothing until the next one.
    await stack.step(at('12:30:00'));
    expect(await backupTasks(stack.admin, id)).toHaveLength(1);
    await stack.step(at('12:30:01'));
    expect(await asks(stack)).toBe(idle + 4);
    for (const t of ['12:40:00', '13:00:00']) await stack.step(at(t));
    expect(await asks(stack)).toBe(idle + 4);
    expect(await backupTasks(stack.admin, id)).toHaveLength(1);
  });
});

describe.each(backends)("the scheduler sees another process's schedule within its refresh (%s)", (backend) => {
  const stack = withStack(backend, { clockAt: T0, env: { CAIRN_SCHEDULER_REFRESH_MS: '1000' } });
  let store: Store;
  let id: string;
  let tenantId: string;

  beforeAll(async () => {
    ({ instanceId: id, tenantId } = await scheduledInstance(stack.admin));
    store = openStore(stack.db.url);
  });
  afterAll(() => store?.close());

  it('computes and fires a schedule written to the store by another process', async () => {
    await stack.step(at('12:00:01'));
    // As another replica writes it: straight to the store, its next fire time not computed.
    await store.db
      .insertInto('userSchedules')
      .values({
        instanceId: id,
        tenantId,
        cron: '30 12 * * *',
        timezone: 'UTC',
        keepLast: 1,
        createdAt: Date.parse(T0),
        updatedAt: Date.parse(T0),
      })
      .execute();
    let t = Date.parse(at('12:01:00'));
    await waitFor(async () => {
      await stack.step(new Date((t += 1000)).toISOString());
      return (await upcoming(stack.admin, id)) === '2026-06-01T12:30:00.000Z';
    }, 'the next run of the schedule written by another process');
    await stack.step(at('12:30:00'));
    expect(await backupTasks(stack.admin, id)).toHaveLength(1);
  });
});
