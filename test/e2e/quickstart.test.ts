import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';
import { setUpDemo } from '../../scripts/quickstart-demo.mjs';

/*
 * What `npm start` sets up (scripts/quickstart.mjs: one agent with the dummy plugin in zone
 * `local`, the demo connection, offering and instance), with the periodic sync every 2 s instead
 * of every 5 minutes: its syncs succeed, and nothing fails.
 */
describe.each(backends)('the quick start’s demo (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_SYNC_INTERVAL_S: '2' },
    agents: [{ zone: 'local', name: 'local-agent' }],
  });

  it('syncs its demo connection without a failure', async () => {
    const { admin } = stack;
    // Like the quick start's own: any 2xx answer is taken, anything else throws.
    const call = async (method: string, path: string, body?: unknown) => {
      const r = await admin.call(method, path, body);
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const demo = await setUpDemo(call, { zone: 'local', dataDir: tempDir('quickstart') });
    const syncs = async () =>
      (await admin.expect(200, 'GET', '/v1/tasks?kind=sync&limit=500')).items as {
        state: string;
        providerId?: string;
      }[];
    await waitFor(
      async () =>
        (await syncs()).filter((t) => t.state === 'succeeded' || t.state === 'failed').length >= 2 || undefined,
      'two periodic syncs of the demo connection to end',
    );
    expect((await admin.expect(200, 'GET', '/v1/tasks?state=failed&limit=500')).items).toEqual([]);
    const events = (await admin.expect(200, 'GET', '/v1/events?limit=500')).items as {
      type: string;
      message: string;
    }[];
    expect(events.filter((e) => e.type === 'task.failed').map((e) => e.message)).toEqual([]);
    // A second start finds the demo again and makes nothing twice.
    const again = await setUpDemo(call, { zone: 'local', dataDir: tempDir('quickstart') });
    expect([again.provider.id, again.offering.id, again.instance.id]).toEqual([
      demo.provider.id,
      demo.offering.id,
      demo.instance.id,
    ]);
  });
});
