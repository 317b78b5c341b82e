/**
 * F8, misbehaving plugins: a plugin that throws, exits, spins, eats its heap, floods stdout,
 * floods progress and events, or answers a result too large, fails its own task (or is cut
 * down to size) and nothing else: the agent keeps one session and its heartbeats, and runs the
 * well-behaved backups beside them to success. Real control plane, real agent, the plugin in its
 * worker thread as in production.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_PACE, PROGRESS_PACE } from '@cairn/plugin-sdk/host';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import { assignOffering, ENDED, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

const PLUGIN = 'cairn-plugin-misbehaves';
/** The SDK's host test fixture (beside the SDK's dist/). */
const FIXTURE = path.resolve(
  path.dirname(createRequire(import.meta.url).resolve('@cairn/plugin-sdk')),
  '..',
  'test-fixtures',
  'misbehaves',
);
const HEAP_MB = 64;
const TIMEOUT_MS = 6000;

/** What each behaviour must end as: its state, and for a failure its code and a word of its message. */
const EXPECTED: Record<string, { state: string; code?: string; message?: RegExp }> = {
  ok: { state: 'succeeded' },
  throws: { state: 'failed', code: 'PLUGIN_CRASHED', message: /the plugin threw/ },
  exits: { state: 'failed', code: 'PLUGIN_CRASHED', message: /exit code 7/ },
  spins: { state: 'failed', code: 'PLUGIN_TIMEOUT' },
  heap: { state: 'failed', code: 'PLUGIN_CRASHED', message: new RegExp(`out of memory.*${HEAP_MB} MB`) },
  stdout: { state: 'succeeded' },
  floods: { state: 'succeeded' },
  'huge-result': { state: 'failed', code: 'RESULT_TOO_LARGE' },
  spoofs: { state: 'failed', code: 'PLUGIN_CRASHED', message: /after spoofing/ },
};

describe.each(backends)('F8: a misbehaving plugin fails its own task only (%s)', (backend) => {
  const stack = withStack(backend, {
    agents: [
      {
        plugins: FIXTURE,
        slots: 12,
        args: ['--plugin-heap-mb', String(HEAP_MB), '--task-timeout-ms', String(TIMEOUT_MS)],
      },
    ],
  });

  async function instanceFor(api: Api, offeringId: string, behaviour: string, n: number): Promise<string> {
    const instance = await api.expect(201, 'POST', '/v1/instances', {
      name: `${behaviour}-${n}`,
      zone: 'zone-a',
      locator: { behaviour },
      agentId: stack.agent.agentId,
    });
    await assignOffering(api, instance.id, offeringId);
    return instance.id as string;
  }

  it('every bad task fails with its own code, the good ones succeed, the agent keeps its session and heartbeats', async () => {
    const api = stack.admin;
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'misbehaving',
      plugin: PLUGIN,
      config: {},
      credentials: {},
      tenantLocators: 'any',
    });
    const offering = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'misbehaving',
      zone: 'zone-a',
      providerId: provider.id,
      allowAdhoc: true,
      allowUserSchedules: false,
    });
    const agentBefore = await api.expect(200, 'GET', `/v1/agents/${stack.agent.agentId}`);
    const logBytesBefore = stack.agent.proc.lines.reduce((n, l) => n + l.length, 0);

    // The well-behaved backups twice, the rest once each: all at once on one agent.
    const behaviours = ['ok', ...Object.keys(EXPECTED)];
    const started = new Map<string, string>(); // task id -> behaviour
    for (const [n, behaviour] of behaviours.entries()) {
      const instanceId = await instanceFor(api, offering.id, behaviour, n);
      const task = await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`);
      started.set(task.id, behaviour);
    }

    const ended = new Map<string, TaskBody>();
    for (const id of started.keys()) ended.set(id, await waitForTask(api, id, ENDED, 60_000));
    for (const [id, task] of ended) {
      const behaviour = started.get(id)!;
      const want = EXPECTED[behaviour]!;
      const seen = `${behaviour}: ${JSON.stringify(task)}`;
      expect(task.state, seen).toBe(want.state);
      expect(task.attempt, seen).toBe(1);
      if (want.code) expect(task.error?.code, seen).toBe(want.code);
      if (want.message) expect(task.error?.message, seen).toMatch(want.message);
    }

    // One session from start to end: the agent never saw it close, the control plane still has it.
    const agentAfter = await api.expect(200, 'GET', `/v1/agents/${stack.agent.agentId}`);
    expect(agentAfter.state).toBe('connected');
    expect(stack.agent.proc.logs().filter((l) => l['msg'] === 'control plane connection closed')).toEqual([]);
    expect(stack.agent.proc.exitCode).toBeNull();
    // Heartbeats went on while the plugins misbehaved.
    expect(Date.parse(agentAfter.lastSeenAt)).toBeGreaterThan(Date.parse(agentBefore.lastSeenAt));

    // The flood: cut to the task's pace, its last progress kept, the dropped events counted once.
    const flood = [...started].find(([, b]) => b === 'floods')![0];
    const floodTask = (await api.expect(200, 'GET', `/v1/tasks/${flood}`)) as { startedAt: string; endedAt: string };
    // What the pace allows over the task's life: the burst, the refill, and the last one kept.
    const seconds = (Date.parse(floodTask.endedAt) - Date.parse(floodTask.startedAt)) / 1000;
    const allowed = (pace: { burst: number; perSecond: number }) =>
      pace.burst + Math.ceil(pace.perSecond * seconds) + 1;
    const progress = await allPages<{ percent: number }>(api, `/v1/tasks/${flood}/progress`);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.length).toBeLessThanOrEqual(allowed(PROGRESS_PACE));
    expect(progress.at(-1)!.percent).toBe(99);
    const floodEvents = (
      await allPages<{ type: string; taskId: string | null; data: { dropped?: number } | null }>(api, '/v1/events')
    ).filter((e) => e.taskId === flood);
    const kept = floodEvents.filter((e) => e.type === 'provider.flood').length;
    const dropped = floodEvents.filter((e) => e.type === 'agent.events_dropped');
    expect(kept).toBeGreaterThanOrEqual(EVENT_PACE.burst);
    expect(kept).toBeLessThanOrEqual(allowed(EVENT_PACE));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.data?.dropped).toBe(20000 - kept);

    // Events of the control plane's own types from a plugin never reach the record: its task shows
    // its own life and the plugin's own event, nothing it pretended.
    const spoof = [...started].find(([, b]) => b === 'spoofs')![0];
    const spoofTypes = (await allPages<{ type: string; taskId: string | null }>(api, '/v1/events'))
      .filter((e) => e.taskId === spoof)
      .map((e) => e.type)
      .sort();
    expect(spoofTypes).toEqual(['provider.message', 'task.failed', 'task.queued', 'task.started']);
    expect(
      stack.agent.proc
        .logs()
        .filter((l) => /control plane's own types/.test(String(l['msg'])))
        .map((l) => l['type'])
        .sort(),
    ).toEqual(['agent.events_dropped', 'maintenance.ready', 'task.succeeded']);

    // 8 MiB written to stdout and stderr: a bounded part reached the agent's log, and a line said the rest was dropped.
    const logBytes = stack.agent.proc.lines.reduce((n, l) => n + l.length, 0) - logBytesBefore;
    expect(logBytes).toBeLessThan(512 * 1024);
    expect(stack.agent.proc.logs().filter((l) => /dropped$/.test(String(l['msg'])) && l['stream'])).toHaveLength(2);

    // The case's figures, for the suite's record (docs/reliability.md).
    console.info(
      `F8 (${backend}): ${started.size} backups at once on one agent, ${[...ended.values()].filter((t) => t.state === 'failed').length} failed as their plugin misbehaved, ` +
        `${[...ended.values()].filter((t) => t.state === 'succeeded').length} succeeded, 1 session, 0 reconnects; flood: 20000 progress reports -> ${progress.length} stored, ` +
        `20000 events -> ${kept} kept + 1 saying ${dropped[0]!.data?.dropped} dropped, over ${seconds.toFixed(1)} s; 8 MiB of stdout/stderr -> ${logBytes} bytes of agent log`,
    );

    // And the agent still runs backups.
    const again = await instanceFor(api, offering.id, 'ok', 99);
    const task = await api.expect(202, 'POST', `/v1/instances/${again}/backups`);
    expect((await waitForTask(api, task.id, ENDED)).state).toBe('succeeded');
    expect(fs.existsSync(stack.agent.stateDir)).toBe(true);
  });
});
