import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { root, tempDir } from '@cairn/test-harness/processes';
import { waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];
/** How long the control plane waits for a preflight; the slow one takes far longer. */
const WAIT_MS = 5000;
const SLOW = { dummy: { durationMs: 3 * WAIT_MS, steps: 20 } };
const SECRET = 'hunter2-very-secret';

describe.each(backends)('provider preflight (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_PREFLIGHT_WAIT_MS: String(WAIT_MS) },
    agents: [{ name: 'checker' }],
  });
  let admin: Api;
  let tenant: Api;
  /** A connection whose every check passes. */
  let good: string;
  let storeDir: string;

  const preflightTasks = async () =>
    ((await admin.expect(200, 'GET', '/v1/tasks?kind=preflight&limit=500')).items as { id: string }[]).length;
  const provider = async (zone: string, name: string, config: Record<string, unknown>, credentials?: unknown) =>
    (
      await admin.expect(201, 'POST', `/v1/zones/${zone}/providers`, {
        name,
        plugin: '@cairn/plugin-dummy',
        config,
        ...(credentials ? { credentials } : {}),
      })
    ).id as string;
  const preflight = (id: string, body?: unknown, api = admin, zone = 'zone-a') =>
    api.post(`/v1/zones/${zone}/providers/${id}/preflight`, body);

  beforeAll(async () => {
    storeDir = tempDir('dummy-store');
    ({ admin } = stack);
    const tenantId = (await admin.expect(201, 'POST', '/v1/tenants', { name: 'acme' })).id;
    const token = await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, {
      role: 'tenant-admin',
      name: 't',
    });
    tenant = stack.api(token.token);
    good = await provider('zone-a', 'good', { durationMs: 0, storeDir }, { password: SECRET });
  });

  it('answers 200 ok with every check when they all pass', async () => {
    const r = await preflight(good);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: true,
      checks: [
        { name: 'config-valid', ok: true, message: 'the config is valid' },
        { name: 'store-writable', ok: true, message: `${storeDir} is writable` },
      ],
      task: { kind: 'preflight', state: 'succeeded' },
    });
    expect(r.body.checks.map((c: { name: string }) => c.name)).toEqual(['config-valid', 'store-writable']);
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
  });

  it('answers 200 not ok with the failed check, its message and advice (the locator makes it fail)', async () => {
    const r = await preflight(good, { locator: { dummy: { failPreflight: 'store-writable' } } });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(false);
    expect(r.body.checks).toEqual([
      { name: 'config-valid', ok: true, message: 'the config is valid' },
      {
        name: 'store-writable',
        ok: false,
        message: 'dummy: store-writable fails as configured (failPreflight)',
        advice: 'remove failPreflight from the provider connection config or the locator',
      },
    ]);
  });

  it('never answers a credential, even one the plugin put in a message', async () => {
    const leaky = await provider('zone-a', 'leaky', { durationMs: 0, preflightLeak: true }, { password: SECRET });
    const r = await preflight(leaky);
    expect(r.status).toBe(200);
    expect(r.body.checks[0].message).toContain('[redacted]');
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
    const task = await admin.expect(200, 'GET', `/v1/tasks/${r.body.task.id}`);
    expect(JSON.stringify(task)).not.toContain(SECRET);
  });

  it('answers the plugin failing with 502 provider_failed, naming its code and message', async () => {
    const down = await provider('zone-a', 'down', { durationMs: 0, failCode: 'REPO_DOWN', failMessage: 'no route' });
    const r = await preflight(down);
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.body).toMatchObject({ status: 502, code: 'provider_failed' });
    expect(r.body.detail).toMatch(/REPO_DOWN: no route/);
  });

  it('answers 503 no_agent for a zone where no agent runs the plugin, and queues nothing', async () => {
    const lonely = await provider('zone-b', 'lonely', { durationMs: 0 });
    const before = await preflightTasks();
    const r = await preflight(lonely, undefined, admin, 'zone-b');
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ status: 503, code: 'no_agent' });
    expect(r.body.detail).toContain('zone-b');
    expect(await preflightTasks()).toBe(before);
  });

  it('answers 409 preflight_unsupported when the agents of the zone run a plugin without preflight', async () => {
    // The plugin template lists no preflight; an agent of zone-t runs it.
    const other = await stack.runAgent((await stack.enroll('zone-t', 'template-host')).stateDir, {
      plugins: path.join(root, 'packages/plugins/template'),
    });
    try {
      const id = (
        await admin.expect(201, 'POST', '/v1/zones/zone-t/providers', {
          name: 'copies',
          plugin: 'cairn-plugin-example',
          config: { storeDir: tempDir('template-store') },
        })
      ).id as string;
      const before = await preflightTasks();
      const r = await waitFor(async () => {
        // The agent's hello may still be on its way: until then the zone has no agent at all.
        const answer = await preflight(id, undefined, admin, 'zone-t');
        return answer.status === 503 ? undefined : answer;
      }, 'the template agent to be known');
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ status: 409, code: 'preflight_unsupported' });
      expect(await preflightTasks()).toBe(before);
    } finally {
      await other.stop();
    }
  });

  it('is for sp-admins only, and 404 for an unknown provider or the wrong zone', async () => {
    const before = await preflightTasks();
    expect((await preflight(good, undefined, tenant)).status).toBe(403);
    expect((await preflight('prv_unknown')).body).toMatchObject({ status: 404, code: 'not_found' });
    expect((await preflight(good, undefined, admin, 'zone-b')).status).toBe(404);
    expect(await preflightTasks()).toBe(before);
  });

  it.each([
    ['an unknown field', { locator: {}, verbose: true }, '(body)'],
    ['a null locator', { locator: null }, 'locator'],
    ['initialise that is not true or false', { initialise: 'yes' }, 'initialise'],
    ['a null initialise', { initialise: null }, 'initialise'],
    ['a body that is a list', [1], '(body)'],
    ['a body that is not JSON', '{"locator":', undefined],
  ])('refuses %s with 400 and queues nothing', async (_what, body, field) => {
    const before = await preflightTasks();
    const r = await preflight(good, body);
    expect(r.status).toBe(400);
    if (field) expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(field);
    expect(await preflightTasks()).toBe(before);
  });

  it('answers 202 with the task when the checks take longer than the wait; the task then shows them', async () => {
    const r = await preflight(good, { locator: SLOW });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/tasks/${r.body.task.id}`);
    expect(r.body.task).toMatchObject({ kind: 'preflight', output: null });
    expect(ENDED).not.toContain(r.body.task.state);
    const ended = await waitForTask(admin, r.body.task.id, ENDED, 60_000);
    expect(ended.state).toBe('succeeded');
    expect(ended.output).toEqual({
      ok: true,
      checks: [
        { name: 'config-valid', ok: true, message: 'the config is valid' },
        { name: 'store-writable', ok: true, message: `${storeDir} is writable` },
      ],
    });
  });

  it('cancels a slow preflight through the task', async () => {
    const r = await preflight(good, { locator: SLOW });
    expect(r.status).toBe(202);
    await admin.expect(202, 'POST', `/v1/tasks/${r.body.task.id}/cancel`);
    const ended = await waitForTask(admin, r.body.task.id, ENDED);
    expect(ended.state).toBe('cancelled');
  });
});

describe.each(backends)('a preflight whose agent is killed under it (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_PREFLIGHT_WAIT_MS: '60000' },
    agents: [{ name: 'checker' }],
  });

  it('is asked again once the agent is back, and answers 200 with the second ask', async () => {
    const { admin } = stack;
    const storeDir = tempDir('dummy-store');
    // The checks take far longer than the test: the first ask is still running when its agent dies.
    const id = (
      await admin.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'slow',
        plugin: '@cairn/plugin-dummy',
        config: { durationMs: 600_000, steps: 600, storeDir },
      })
    ).id as string;
    const answer = admin.post(`/v1/zones/zone-a/providers/${id}/preflight`);
    const asks = async () =>
      (await admin.expect(200, 'GET', '/v1/tasks?kind=preflight&limit=50')).items as {
        id: string;
        state: string;
        error: { code: string } | null;
      }[];
    const first = await waitFor(async () => (await asks()).find((t) => t.state === 'running'), 'the preflight running');

    const { stateDir } = stack.agent;
    stack.agent.proc.child.kill('SIGKILL');
    // Edits apply to later tasks: the next ask is quick.
    await admin.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${id}`, { config: { durationMs: 0, storeDir } });
    await stack.runAgent(stateDir);

    const r = await answer;
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ ok: true, task: { state: 'succeeded' } });
    const all = await asks();
    // The first ask ended interrupted with its agent; the second answered.
    expect(all.find((t) => t.id === first.id)).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    expect(r.body.task.id).not.toBe(first.id);
    expect(all).toHaveLength(2);
  }, 120_000);
});
