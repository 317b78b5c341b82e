import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { definePlugin, SDK_API_VERSION } from '@cairn/plugin-sdk';
import { inspectPlugin, loadPlugin } from '@cairn/plugin-sdk/host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { AGENT_PACKAGES } from './plugins.js';
import { readCredential } from './state/credential.js';
import { readDrain, readServerDrain, writeDrain } from './state/drain.js';
import { TaskJournal } from './state/journal.js';
import { readStatus } from './state/status.js';
import { enrollForTest, startTestAgent, type TestAgent } from './testing/agents.js';
import { FakeControlPlane } from './testing/fake-control-plane.js';
import { tempDir, waitFor } from './testing/wait.js';

let dir: string;
let cleanup: () => void;
let cp: FakeControlPlane;
let running: TestAgent | undefined;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  // A long interval: no test here should see a reconnect for silence unless it asks for one.
  cp = await FakeControlPlane.start({ heartbeatIntervalMs: 2_000 });
});
afterEach(async () => {
  await running?.stop();
  running = undefined;
  await cp.close();
  cleanup();
});

async function start(options: Parameters<typeof startTestAgent>[2] = {}): Promise<TestAgent> {
  running = await startTestAgent(dir, enrollForTest(dir, cp.url), options);
  return running;
}

const dummyBackup = (taskId: string, config: Record<string, unknown> = { durationMs: 300 }, attempt = 1) => ({
  assign: {
    taskId,
    attempt,
    operation: 'backup',
    plugin: '@cairn/plugin-dummy',
    providerConfigJson: JSON.stringify({ endpoint: null, config, credentials: {} }),
    paramsJson: JSON.stringify({ instanceId: 'ins_1', instanceName: 'vm-1', locator: {}, mode: 'FULL' }),
  },
});

/** Reports the running agent still holds unacknowledged. */
const unacknowledged = () => running?.agent.spool.size ?? -1;

describe('agent session', () => {
  it('says hello with its plugins, slots and running tasks, then logs "agent connected"', async () => {
    const { logs } = await start({ slots: 3 });
    const session = await cp.waitForSession(0);
    expect(session.hello).toMatchObject({
      protocolVersion: 1,
      agentId: 'agt_test',
      zone: 'zone-a',
      slots: 3,
      running: [],
      draining: false,
      plugins: [
        {
          name: '@cairn/plugin-dummy',
          apiVersion: 1,
          capabilities: expect.arrayContaining(['backup', 'restore']) as unknown,
        },
      ],
    });
    const line = await waitFor(() => logs.find('agent connected')[0], 'the "agent connected" log line');
    expect(line).toMatchObject({ agentId: 'agt_test', sessionId: 'session-0' });
  });

  it('runs a dummy backup: accepted, at least three progress reports, a result with backup metadata', async () => {
    await start();
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_backup'));
    const result = await cp.waitForReport('tsk_backup', 'result');
    const reports = cp.reportsFor('tsk_backup');
    expect(reports[0]?.kind).toBe('accepted');
    expect(cp.reportsFor('tsk_backup', 'progress').length).toBeGreaterThanOrEqual(3);
    expect(result.frame.result?.ok?.backup).toMatchObject({
      externalId: expect.stringMatching(/^dummy-/) as unknown,
      mode: 'FULL',
      sizeBytes: 64 * 1024 * 1024,
    });
    // Reports arrive in spool order.
    const seqs = reports.map((r) => r.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    // Every report was acknowledged, so nothing is left in the spool.
    await waitFor(() => unacknowledged() === 0, 'the spool to empty after the acks');
  });

  it('reads the time from the clock it is given: reports, journal and status file', async () => {
    const at = Date.parse('2031-05-06T07:08:09Z');
    await start({ clock: { now: () => at } });
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_clock', { durationMs: 50 }));
    await cp.waitForReport('tsk_clock', 'result');
    const reports = cp.reportsFor('tsk_clock');
    expect(reports.length).toBeGreaterThanOrEqual(3);
    for (const r of reports) expect((r.frame[r.kind] as { atMs?: number }).atMs, r.kind).toBe(at);
    await waitFor(() => TaskJournal.read(dir).get('tsk_clock')?.state === 'finished', 'the journal to end the task');
    expect(TaskJournal.read(dir).get('tsk_clock')).toMatchObject({ startedAt: at, endedAt: at });
    expect(readStatus(dir)).toMatchObject({
      startedAt: '2031-05-06T07:08:09.000Z',
      connectedAt: '2031-05-06T07:08:09.000Z',
    });
  });

  it('delivers the cancel to the plugin and ends the task CANCELLED', async () => {
    let sawAbort = false;
    const probe = inspectPlugin('cairn-plugin-probe', {
      default: definePlugin({
        manifest: {
          name: 'cairn-plugin-probe',
          version: '1.0.0',
          apiVersion: SDK_API_VERSION,
          capabilities: ['backup'],
          configSchema: {},
        },
        createProvider: () => ({
          backup: (_req, ctx) =>
            new Promise((_resolve, reject) => {
              ctx.progress({ percent: 5, message: 'waiting to be cancelled' });
              ctx.signal.addEventListener('abort', () => {
                sawAbort = ctx.signal.aborted;
                ctx.event({ type: 'provider.message', message: 'probe saw the abort' });
                reject(ctx.signal.reason as Error);
              });
            }),
        }),
      }),
    });
    await start({ plugins: [probe] });
    await cp.waitForSession(0);
    cp.send({ assign: { ...dummyBackup('tsk_cancel').assign, plugin: 'cairn-plugin-probe' } });
    await cp.waitForReport('tsk_cancel', 'progress');
    cp.send({ cancel: { taskId: 'tsk_cancel', attempt: 1, reason: 'cancelled through the API' } });
    const result = await cp.waitForReport('tsk_cancel', 'result');
    expect(result.frame.result?.error).toMatchObject({ code: 'CANCELLED', message: 'cancelled through the API' });
    expect(sawAbort).toBe(true);
    // What the plugin reported while winding down arrives too, before the result.
    const event = cp.reportsFor('tsk_cancel', 'event').find((e) => e.frame.event?.message === 'probe saw the abort');
    expect(event?.seq).toBeLessThan(result.seq);
  });

  it('takes an export target as the control plane sends it: a bad shape rejected, a repository at its state refused, its secrets blanked', async () => {
    const seen: unknown[] = [];
    const probe = inspectPlugin('cairn-plugin-probe', {
      default: definePlugin({
        manifest: {
          name: 'cairn-plugin-probe',
          version: '1.0.0',
          apiVersion: SDK_API_VERSION,
          capabilities: ['backup', 'preflight'],
          configSchema: {},
        },
        createProvider: (connection) => ({
          backup: () => {
            seen.push(connection.exportTo);
            return Promise.resolve({ externalId: 'x', sizeBytes: 0, mode: 'FULL' as const });
          },
          preflight: () =>
            Promise.resolve({
              ok: true,
              checks: [
                { name: 'echo', ok: true, message: `to ${String(connection.exportTo?.credentials['password'])}` },
              ],
            }),
        }),
      }),
    });
    await start({ plugins: [probe] });
    await cp.waitForSession(0);
    const target = {
      plugin: '@cairn/plugin-restic',
      endpoint: '/srv/export',
      config: {},
      credentials: { password: 'target-secret-9' },
    };
    const assign = (taskId: string, exportTo: unknown, operation = 'backup') => ({
      assign: {
        ...dummyBackup(taskId).assign,
        plugin: 'cairn-plugin-probe',
        operation,
        providerConfigJson: JSON.stringify({ endpoint: null, config: {}, credentials: {}, exportTo }),
      },
    });
    cp.send(assign('tsk_x_ok', target));
    await cp.waitForReport('tsk_x_ok', 'result');
    expect(seen).toEqual([target]);
    cp.send(assign('tsk_x_shape', { ...target, credentials: 'pw' }));
    expect((await cp.waitForReport('tsk_x_shape', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'BAD_PARAMS',
      message: expect.stringContaining('provider_config_json.exportTo.credentials') as unknown,
    });
    // The agent's own state directory as the repository: refused before the plugin runs.
    cp.send(assign('tsk_x_state', { ...target, endpoint: path.join(dir, 'repo') }));
    const refused = await cp.waitForReport('tsk_x_state', 'result');
    expect(refused.frame.result?.error?.code).toBe('PATH_NOT_ALLOWED');
    expect(refused.frame.result?.error?.message).toMatch(/^exportTo\.endpoint .* is or holds the agent's own state/);
    expect(seen).toHaveLength(1);
    cp.send(assign('tsk_x_pre', target, 'preflight'));
    const pre = await cp.waitForReport('tsk_x_pre', 'result');
    const output = pre.frame.result?.ok?.outputJson ?? '';
    expect(output).toContain('"to ');
    expect(output).not.toContain('target-secret-9');
  });

  it('re-acknowledges a repeated assignment instead of running it twice', async () => {
    const { agent } = await start();
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_twice', { durationMs: 60_000 }));
    await cp.waitForReport('tsk_twice', 'accepted');
    cp.send(dummyBackup('tsk_twice', { durationMs: 60_000 }));
    await waitFor(() => cp.reportsFor('tsk_twice', 'accepted').length === 2, 'a second accepted');
    expect(agent.executor.running()).toEqual([{ taskId: 'tsk_twice', attempt: 1 }]);
    cp.send({ cancel: { taskId: 'tsk_twice', attempt: 1, reason: 'enough' } });
    await cp.waitForReport('tsk_twice', 'result');
    // Sent again after it finished: nothing new.
    cp.send(dummyBackup('tsk_twice', { durationMs: 0 }));
    cp.send(dummyBackup('tsk_other', { durationMs: 0 }));
    await cp.waitForReport('tsk_other', 'result');
    expect(cp.reportsFor('tsk_twice', 'accepted')).toHaveLength(2);
    expect(cp.reportsFor('tsk_twice', 'result')).toHaveLength(1);
  });

  it('stops an older attempt still running here when a newer attempt of the task arrives', async () => {
    await start({ slots: 1 });
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_retry', { durationMs: 60_000 }, 1));
    await cp.waitForReport('tsk_retry', 'accepted');
    cp.send(dummyBackup('tsk_retry', { durationMs: 0 }, 2));
    const results = await waitFor(() => {
      const r = cp.reportsFor('tsk_retry', 'result');
      return r.length === 2 ? r : undefined;
    }, 'both attempts to end');
    expect(results.find((r) => r.attempt === 1)?.frame.result?.error).toMatchObject({ code: 'SUPERSEDED' });
    expect(results.find((r) => r.attempt === 2)?.frame.result?.ok?.backup?.externalId).toMatch(/^dummy-/);
  });

  it('rejects an assignment when every slot is busy, or the plugin is missing', async () => {
    await start({ slots: 1 });
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_long', { durationMs: 60_000 }));
    await cp.waitForReport('tsk_long', 'accepted');
    cp.send(dummyBackup('tsk_more'));
    cp.send({ assign: { ...dummyBackup('tsk_noplugin').assign, plugin: 'cairn-plugin-nowhere' } });
    expect((await cp.waitForReport('tsk_more', 'rejected')).frame.rejected).toMatchObject({ reasonCode: 'NO_SLOT' });
    expect((await cp.waitForReport('tsk_noplugin', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'NO_PLUGIN',
    });
  });

  it('re-sends unacknowledged reports, in order, after the server drops the connection', async () => {
    cp.autoAck = false;
    await start();
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_resend', { durationMs: 100 }));
    await cp.waitForReport('tsk_resend', 'result');
    const first = cp.reports.filter((r) => r.session === 0).map((r) => r.seq);
    expect(unacknowledged()).toBe(first.length);

    cp.dropAll();
    await cp.waitForSession(1);
    await waitFor(() => cp.reports.filter((r) => r.session === 1).length === first.length, 'the re-sent reports');
    expect(cp.reports.filter((r) => r.session === 1).map((r) => r.seq)).toEqual(first);

    cp.ack(first);
    await waitFor(() => unacknowledged() === 0, 'the spool to empty after the ack');
  });

  it('replays its spool in ReportBatch frames to a control plane that takes them, in order, each report once', async () => {
    await cp.close();
    cp = await FakeControlPlane.start({ heartbeatIntervalMs: 2_000, acceptsReportBatch: true, autoAck: false });
    await start();
    await cp.waitForSession(0);
    // Two tasks at once: their reports are made durable together and leave together.
    cp.send(dummyBackup('tsk_b1', { durationMs: 100 }));
    cp.send(dummyBackup('tsk_b2', { durationMs: 100 }));
    await cp.waitForReport('tsk_b1', 'result');
    await cp.waitForReport('tsk_b2', 'result');
    const first = cp.reports.filter((r) => r.session === 0).map((r) => r.seq);
    expect([...first].sort((a, b) => a - b)).toEqual(first);

    // The replay after a dropped connection: everything unacknowledged, in batch frames.
    cp.dropAll();
    const session = await cp.waitForSession(1);
    await waitFor(() => cp.reports.filter((r) => r.session === 1).length === first.length, 'the replayed reports');
    expect(cp.reports.filter((r) => r.session === 1).map((r) => r.seq)).toEqual(first);
    const batches = session.frames.filter((f) => f.body === 'reportBatch');
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThan(first.length);
    cp.ack(first);
    await waitFor(() => unacknowledged() === 0, 'the spool to empty after the ack');
  });

  it('closes the session on a garbage frame and reconnects without crashing', async () => {
    const { logs } = await start();
    await cp.waitForSession(0);
    cp.sendRaw(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    const second = await cp.waitForSession(1);
    expect(cp.sessions[0]?.closeCode).toBe(1007);
    expect(logs.lines.some((l) => String(l['msg']).startsWith('closing the control plane session: bad frame'))).toBe(
      true,
    );
    // The new session works.
    second.socket.send(new Uint8Array(0)); // an empty frame is garbage too: FRAME_EMPTY
    await cp.waitForSession(2);
    cp.send(dummyBackup('tsk_after', { durationMs: 0 }));
    await cp.waitForReport('tsk_after', 'result');
  });

  it('reconnects when the control plane stops answering heartbeats', async () => {
    await cp.close();
    cp = await FakeControlPlane.start({ heartbeatIntervalMs: 100 });
    await start();
    await cp.waitForSession(0);
    cp.answerHeartbeats = false;
    await cp.waitForSession(1);
    expect(cp.sessions[0]?.closed).toBe(true);
  });

  it('refuses backups while drained locally, runs restores, and reconnects to report the drain to a control plane without AgentState', async () => {
    await start();
    await cp.waitForSession(0);
    writeDrain(dir, { enabled: true, message: 'disk swap until 18:00', source: 'local' }, systemClock);
    const second = await cp.waitForSession(1);
    expect(second.hello).toMatchObject({ draining: true, drainMessage: 'disk swap until 18:00' });
    expect(cp.sessions[0]?.closeCode).toBe(4001);

    cp.send(dummyBackup('tsk_drained'));
    expect((await cp.waitForReport('tsk_drained', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'DRAINING',
      message: 'disk swap until 18:00',
    });
    cp.send({
      assign: {
        ...dummyBackup('tsk_restore').assign,
        operation: 'restore',
        paramsJson: JSON.stringify({ instanceId: 'ins_1', locator: {}, backupExternalId: 'dummy-1' }),
      },
    });
    expect((await cp.waitForReport('tsk_restore', 'result')).frame.result?.ok?.outputJson).toContain('bytesRestored');
  });

  it('persists and obeys a drain from the control plane, and acknowledges it', async () => {
    await start();
    await cp.waitForSession(0);
    cp.send({ drain: { enabled: true, message: '' } });
    await waitFor(() => readServerDrain(dir).enabled, 'the control plane drain file');
    expect(readServerDrain(dir)).toMatchObject({ enabled: true, source: 'server' });
    // The operator's own drain is a separate record, untouched.
    expect(readDrain(dir).enabled).toBe(false);
    await waitFor(() => cp.sessions[0]?.frames.some((f) => f.body === 'ack'), 'the drain ack');
    cp.send(dummyBackup('tsk_maint'));
    expect((await cp.waitForReport('tsk_maint', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'DRAINING',
      message: 'Service provider is currently undergoing scheduled maintenance.',
    });
    // The server already knows: no reconnect to report it.
    expect(cp.sessions).toHaveLength(1);
  });

  it('acknowledges a repeated control plane drain without storing or logging it again', async () => {
    const { logs } = await start();
    await cp.waitForSession(0);
    const acks = () => cp.sessions[0]!.frames.filter((f) => f.body === 'ack').length;
    cp.send({ drain: { enabled: true, message: 'window' } });
    await waitFor(() => acks() === 1 || undefined, 'the first ack');
    const stored = readServerDrain(dir).updatedAt;
    cp.send({ drain: { enabled: true, message: 'window' } });
    cp.send({ drain: { enabled: false, message: '' } });
    cp.send({ drain: { enabled: false, message: '' } });
    await waitFor(() => acks() === 4 || undefined, 'four acks');
    expect(logs.find('maintenance drain set by the control plane; new backups are refused')).toHaveLength(1);
    expect(logs.find('maintenance drain lifted by the control plane')).toHaveLength(1);
    expect(readServerDrain(dir).updatedAt).not.toBe(stored);
  });

  it('keeps obeying the control plane drain after a restart, before any session, and never reports it as its own', async () => {
    const first = await start();
    await cp.waitForSession(0);
    cp.send({ drain: { enabled: true, message: 'storage upgrade' } });
    await waitFor(() => readServerDrain(dir).enabled, 'the control plane drain file');
    await first.stop();
    running = undefined;
    // Cut off: the control plane refuses the agent from now on.
    cp.credential = 'another-credential';
    const again = await start();
    expect(again.agent.drain.current).toMatchObject({ enabled: true, message: 'storage upgrade', source: 'server' });
    cp.credential = 'test-credential';
    const session = await cp.waitForSession(1);
    // The hello carries only a drain set on the host.
    expect(session.hello).toMatchObject({ draining: false });
    cp.send(dummyBackup('tsk_after_restart'));
    expect((await cp.waitForReport('tsk_after_restart', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'DRAINING',
      message: 'storage upgrade',
    });
  });

  it('a control plane lifting its drain leaves the operator drain in force', async () => {
    writeDrain(dir, { enabled: true, message: 'host patching', source: 'local' }, systemClock);
    await start();
    const session = await cp.waitForSession(0);
    expect(session.hello).toMatchObject({ draining: true, drainMessage: 'host patching' });
    cp.send({ drain: { enabled: true, message: 'global window' } });
    await waitFor(() => readServerDrain(dir).enabled, 'the control plane drain file');
    cp.send({ drain: { enabled: false, message: '' } });
    await waitFor(() => !readServerDrain(dir).enabled, 'the lifted control plane drain');
    cp.send(dummyBackup('tsk_still_drained'));
    // The operator's message wins: it is about this very host.
    expect((await cp.waitForReport('tsk_still_drained', 'rejected')).frame.rejected).toMatchObject({
      reasonCode: 'DRAINING',
      message: 'host patching',
    });
    writeDrain(dir, { enabled: false, message: '', source: 'local' }, systemClock);
    const next = await cp.waitForSession(1);
    expect(next.hello).toMatchObject({ draining: false });
    cp.send(dummyBackup('tsk_free', { durationMs: 0 }));
    await cp.waitForReport('tsk_free', 'result');
  });

  it('aborts running backups after being cut off longer than the limit, and reports it on reconnect', async () => {
    const { agent, logs } = await start({ disconnectAbortMs: 300 });
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_cutoff', { durationMs: 120_000 }));
    await cp.waitForReport('tsk_cutoff', 'accepted');
    // The credential is refused from now on (as if revoked), so the agent stays cut off.
    cp.credential = 'another-credential';
    cp.dropAll();
    await waitFor(() => agent.spool.hasResult('tsk_cutoff', 1), 'the spooled AGENT_DISCONNECTED result');
    expect(cp.refusedUpgrades).toBeGreaterThan(0);
    await waitFor(
      () =>
        logs.lines.find(
          (l) => l['level'] === 50 && String(l['msg']).includes('refused the agent credential (HTTP 401)'),
        ),
      'the credential refusal log line',
    );
    cp.credential = 'test-credential';
    const result = await cp.waitForReport('tsk_cutoff', 'result');
    expect(result.frame.result?.error).toMatchObject({ code: 'AGENT_DISCONNECTED', retryable: true });
  });

  it('reports AGENT_INTERRUPTED on start-up for a task the journal still calls running', async () => {
    const first = await start();
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_crash', { durationMs: 120_000 }));
    await cp.waitForReport('tsk_crash', 'accepted');
    // Simulate a crash: the agent vanishes without ending its task (the child-process version
    // of this, with kill -9, is in main.test.ts).
    await first.agent.connection.stop();
    first.agent.drain.close();
    first.agent.stateLog.close();
    running = undefined;
    expect(TaskJournal.read(dir).get('tsk_crash')).toMatchObject({ state: 'running' });

    const again = await startTestAgent(dir, enrollForTest(dir, cp.url), {
      plugins: [await loadPlugin('@cairn/plugin-dummy', { fallback: AGENT_PACKAGES })],
    });
    try {
      const result = await cp.waitForReport('tsk_crash', 'result');
      expect(result.frame.result?.error).toMatchObject({
        code: 'AGENT_INTERRUPTED',
        message: 'agent restarted while the task was running',
      });
    } finally {
      await again.stop();
      first.agent.executor.abortAll({ code: 'TEST_CLEANUP', message: 'test cleanup', retryable: false });
      await first.agent.executor.settled();
    }
  });

  it('upgraded in place, moves the old spool and journal files into its log: sends what was unacknowledged, ends what was running', async () => {
    mkdirSync(path.join(dir, 'spool'));
    mkdirSync(path.join(dir, 'tasks'));
    const body = { taskId: 'tsk_old_done', attempt: 1, percent: 100, atMs: Date.now(), spoolSeq: 41 };
    writeFileSync(
      path.join(dir, 'spool', '0000000000000041.json'),
      JSON.stringify({ seq: 41, kind: 'progress', body }),
    );
    writeFileSync(path.join(dir, 'spool', 'ceiling'), '1000');
    writeFileSync(
      path.join(dir, 'tasks', 'tsk_old_run.json'),
      JSON.stringify({
        taskId: 'tsk_old_run',
        attempt: 2,
        operation: 'backup',
        plugin: 'p',
        state: 'running',
        startedAt: 1,
      }),
    );
    await start();
    expect((await cp.waitForReport('tsk_old_done', 'progress')).seq).toBe(41);
    const ended = await cp.waitForReport('tsk_old_run', 'result');
    expect(ended.frame.result?.error).toMatchObject({ code: 'AGENT_INTERRUPTED' });
    // Above the old ceiling: no seq repeats across the upgrade.
    expect(ended.seq).toBeGreaterThan(1000);
    expect(existsSync(path.join(dir, 'spool'))).toBe(false);
    expect(existsSync(path.join(dir, 'tasks'))).toBe(false);
  });
});

describe("the control plane's frame limit (welcome.max_frame_bytes)", () => {
  it('cuts or replaces a report larger than the control plane accepts, so the session stays up', async () => {
    const limit = 16 * 1024;
    await cp.close();
    cp = await FakeControlPlane.start({ heartbeatIntervalMs: 2_000, maxFrameBytes: limit });
    const big = inspectPlugin('cairn-plugin-big', {
      default: definePlugin({
        manifest: {
          name: 'cairn-plugin-big',
          version: '1.0.0',
          apiVersion: SDK_API_VERSION,
          capabilities: ['backup'],
          configSchema: {},
        },
        createProvider: () => ({
          backup: (_req, ctx) => {
            ctx.event({ type: 'provider.message', message: 'big data', data: { blob: 'x'.repeat(40_000) } });
            ctx.progress({ percent: 50, message: 'y'.repeat(1500) });
            // Fits the protocol's default frame (1 MiB), not this control plane's limit.
            return Promise.resolve({
              externalId: 'big-1',
              sizeBytes: 1,
              mode: 'FULL',
              extra: { blob: 'z'.repeat(100_000) },
            });
          },
        }),
      }),
    });
    await start({ plugins: [big] });
    await cp.waitForSession(0);
    cp.send({
      assign: {
        taskId: 'tsk_big',
        attempt: 1,
        operation: 'backup',
        plugin: 'cairn-plugin-big',
        providerConfigJson: '{}',
        paramsJson: '{}',
      },
    });
    const result = await cp.waitForReport('tsk_big', 'result');
    expect(result.frame.result?.error).toMatchObject({ code: 'RESULT_TOO_LARGE', retryable: false });
    const [event] = cp.reportsFor('tsk_big', 'event');
    expect(event?.frame.event).toMatchObject({ message: 'big data', dataJson: '' });
    expect(cp.reportsFor('tsk_big', 'progress')).toHaveLength(1);
    // One session throughout: no frame went over the limit and got it closed.
    expect(cp.sessions).toHaveLength(1);
    expect(cp.sessions[0]!.closed).toBe(false);
    await waitFor(() => unacknowledged() === 0 || undefined, 'the spool to be acknowledged');
  });
});

describe('graceful shutdown', () => {
  it('re-hellos as shutting down to a control plane without AgentState, refuses new tasks with SHUTTING_DOWN, lets the running one succeed', async () => {
    const { agent } = await start();
    await cp.waitForSession(0);
    cp.send(dummyBackup('tsk_running', { durationMs: 1500, steps: 3 }));
    await cp.waitForReport('tsk_running', 'accepted');

    const stopped = agent.shutdown({ graceMs: 30_000 });
    const second = await cp.waitForSession(1);
    expect(second.hello).toMatchObject({ shuttingDown: true, running: [{ taskId: 'tsk_running', attempt: 1 }] });
    cp.send({ assign: { ...dummyBackup('tsk_new').assign, operation: 'restore' } });
    const rejected = await cp.waitForReport('tsk_new', 'rejected');
    expect(rejected.frame.rejected?.reasonCode).toBe('SHUTTING_DOWN');

    expect(await stopped).toEqual({ interrupted: 0, unacknowledged: 0 });
    expect((await cp.waitForReport('tsk_running', 'result')).frame.result?.ok?.backup?.externalId).toBeTruthy();
    running = undefined;
  });
});

describe('state reported on the live session (the welcome says accepts_agent_state)', () => {
  beforeEach(async () => {
    await cp.close();
    cp = await FakeControlPlane.start({ heartbeatIntervalMs: 2_000, acceptsAgentState: true });
  });
  const states = (n: number) => cp.sessions[n]!.frames.filter((f) => f.body === 'agentState').map((f) => f.agentState);

  it('a local drain and undrain go out as AgentState frames, without a new session', async () => {
    await start();
    const session = await cp.waitForSession(0);
    writeDrain(dir, { enabled: true, message: 'disk swap until 18:00', source: 'local' }, systemClock);
    await waitFor(() => states(0).length === 1 || undefined, 'the drain to be reported');
    writeDrain(dir, { enabled: false, message: '', source: 'local' }, systemClock);
    await waitFor(() => states(0).length === 2 || undefined, 'the undrain to be reported');
    expect(states(0)).toMatchObject([
      { draining: true, drainMessage: 'disk swap until 18:00', shuttingDown: false },
      { draining: false, drainMessage: '', shuttingDown: false },
    ]);
    expect(session.closed).toBe(false);
    expect(cp.sessions).toHaveLength(1);
  });

  it('a shutdown goes out as an AgentState frame before the session closes', async () => {
    const { agent } = await start();
    const session = await cp.waitForSession(0);
    // The fake has the hello; the agent reports state on a session only once it has the welcome.
    await waitFor(() => readStatus(dir)?.sessionId === 'session-0' || undefined, 'the agent to take the welcome');
    expect(await agent.shutdown({ graceMs: 5_000 })).toEqual({ interrupted: 0, unacknowledged: 0 });
    running = undefined;
    expect(states(0)).toMatchObject([{ draining: false, shuttingDown: true }]);
    expect(session.closeCode).toBe(1001);
    expect(cp.sessions).toHaveLength(1);
  });

  it('a rotated credential is stored, then acknowledged with CredentialStored on the same session', async () => {
    await start();
    const session = await cp.waitForSession(0);
    cp.send({ credential: { credential: 'rotated-credential' } });
    const stored = await waitFor(
      () => session.frames.find((f) => f.body === 'credentialStored'),
      'the CredentialStored frame',
    );
    expect(stored.credentialStored).toEqual({ credential: 'rotated-credential' });
    expect(readCredential(dir)?.credential).toBe('rotated-credential');
    expect(session.closed).toBe(false);
    // The next session authenticates with the new credential.
    cp.credential = 'rotated-credential';
    cp.dropAll();
    await cp.waitForSession(1);
  });
});
