import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, type wire } from '@cairn/proto';
import type { Store } from '@cairn/control-plane';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc, Proc } from '@cairn/test-harness/processes';
import { unacknowledgedSeqs } from '@cairn/test-harness/agent-log';
import { agentCredential, RawAgent } from '@cairn/test-harness/raw-agent';
import { protectInstance, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';
import { everyListAnswers } from '@cairn/test-harness/lists';

/** The sizes with CAIRN_TEST_FLOOD=1; smaller ones (still far over the budget) otherwise. */
const FULL = process.env['CAIRN_TEST_FLOOD'] === '1';
const HEARTBEAT_FLOOD = FULL ? 100_000 : 10_000;
const PROGRESS_FLOOD = FULL ? 20_000 : 5_000;
/** The frame budget of this file's control plane (small, so a modest backlog exceeds it). */
const FRAME_RATE = 1000;
const FRAME_BURST = 200;
const TERMINAL = ['succeeded', 'failed', 'cancelled', 'lost'];

async function metric(cp: ControlPlaneProc, line: RegExp): Promise<number> {
  const text = await (await fetch(`${cp.url}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? 0);
}

/** Keeps asking /healthz while `work` runs; every request must complete. */
async function healthzAnswersDuring<T>(cp: ControlPlaneProc, work: () => Promise<T>): Promise<T> {
  let done = false;
  let answered = 0;
  const probe = (async () => {
    while (!done) {
      const res = await fetch(`${cp.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      answered++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await probe;
    expect(answered).toBeGreaterThan(0);
  }
}

describe.each(backends)('agent wire: one agent cannot stall, flood or poison the control plane (%s)', (backend) => {
  const stack = withStack(backend, {
    env: { CAIRN_AGENT_FRAME_RATE: String(FRAME_RATE), CAIRN_AGENT_FRAME_BURST: String(FRAME_BURST) },
    // MySQL's TEXT columns cannot hold a 1 MiB locator: there the agent announces a smaller limit.
    agents: [{ name: 'good-host', ...(backend === 'mysql' ? { args: ['--max-frame-bytes', '32768'] } : {}) }],
  });
  let cp: ControlPlaneProc;
  let admin: Api;
  let tenant: Api;
  let tenantId: string;
  let store: Store;
  let good: Proc;

  /** An instance of the second tenant in `zone`, protected by a fresh dummy offering. */
  async function tenantInstance(zone: string, locator: unknown = { vm: 'x' }): Promise<string> {
    const p = await protectInstance(admin, zone);
    await admin.expect(201, 'POST', `/v1/offerings/${p.offeringId}/grants`, { tenantId });
    const inst = await tenant.expect(201, 'POST', '/v1/instances', {
      name: `t-${Math.random().toString(36).slice(2, 8)}`,
      zone,
      locator,
    });
    await tenant.expect(200, 'PUT', `/v1/instances/${inst.id}/offering`, { offeringId: p.offeringId });
    return inst.id as string;
  }

  async function backup(api: Api, instanceId: string): Promise<string> {
    return (await api.expect(202, 'POST', `/v1/instances/${instanceId}/backups`)).id as string;
  }

  /** Every read a poisoned row used to break answers 200, for the tenant and the sp-admin. */
  async function readsAnswer(taskId: string): Promise<void> {
    for (const api of [tenant, admin]) {
      for (const p of ['/v1/tasks', `/v1/tasks/${taskId}`, `/v1/tasks/${taskId}/progress`, '/v1/events?limit=500']) {
        const r = await api.get(p);
        expect(r.status, `${p}: ${JSON.stringify(r.body)}`).toBe(200);
      }
    }
  }

  async function rawAgent(zone: string) {
    return agentCredential((await stack.enroll(zone, `raw-${zone}`)).stateDir);
  }

  beforeAll(async () => {
    cp = stack.cp;
    admin = stack.admin;
    const t = await stack.tenant('wire-tenant', { tokenName: 'wire' });
    tenantId = t.id;
    tenant = t.api;
    store = await stack.store();
    good = stack.agent.proc;
  });

  it('fails an assignment larger than the agent accepts, and the agent keeps serving other tenants', async () => {
    const fat = await protectInstance(admin, 'zone-a');
    const blob = 'x'.repeat(backend === 'mysql' ? 40_000 : 1024 * 1024);
    await store.db
      .updateTable('instances')
      .set({ locator: JSON.stringify({ blob }) })
      .where('id', '=', fat.instanceId)
      .execute();
    const other = await tenantInstance('zone-a');
    const fatTask = await backup(admin, fat.instanceId);
    const otherTask = await backup(tenant, other);
    const failed = await waitForTask(admin, fatTask, TERMINAL);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('ASSIGNMENT_TOO_LARGE');
    expect(failed.error?.message).toMatch(/over agent agt_\w+'s frame limit of \d+ bytes/);
    expect((await waitForTask(tenant, otherTask, TERMINAL)).state).toBe('succeeded');
    // The agent never lost its session over it.
    expect(good.logs().filter((l) => l['msg'] === 'agent connected')).toHaveLength(1);
  });

  it('fails an assignment sent again and again without being accepted, instead of looping', async () => {
    const raw = await rawAgent('zone-u');
    const instanceId = await tenantInstance('zone-u');
    const taskId = await backup(tenant, instanceId);
    // An agent that drops its session on every assignment (as one does on a frame it cannot take).
    let sessions = 0;
    const end = Date.now() + 60_000;
    for (;;) {
      const task = await tenant.expect<TaskBody>(200, 'GET', `/v1/tasks/${taskId}`);
      if (TERMINAL.includes(task.state) || Date.now() > end) break;
      const s = await RawAgent.connect(cp, raw);
      sessions++;
      await s.next('assign', () => true, 3_000).catch(() => undefined);
      s.terminate();
      await new Promise((r) => setTimeout(r, 100));
    }
    const task = await tenant.expect<TaskBody>(200, 'GET', `/v1/tasks/${taskId}`);
    expect(task.state).toBe('failed');
    expect(task.error?.code).toBe('ASSIGNMENT_UNDELIVERED');
    expect(sessions).toBeLessThanOrEqual(10);
  });

  /**
   * A raw agent of `zone` floods its session with `frames`: the session is closed over the frame
   * rate limit (counted once), while /healthz answers and a backup on the healthy agent still
   * succeeds.
   */
  async function floodIsCut(zone: string, frames: Uint8Array[]): Promise<void> {
    const raw = await rawAgent(zone);
    const before = await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m);
    const instanceId = await tenantInstance('zone-a');
    await healthzAnswersDuring(cp, async () => {
      const s = await RawAgent.connect(cp, raw);
      await s.flood(frames);
      const closed = await s.closedBy();
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/frame rate limit/);
      const taskId = await backup(tenant, instanceId);
      expect((await waitForTask(tenant, taskId, TERMINAL)).state).toBe('succeeded');
    });
    expect(await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m)).toBe(before + 1);
  }

  it('closes a heartbeat flood over the frame budget; the API and a healthy agent keep working', async () => {
    const frame = encodeFrame({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
    await floodIsCut(
      'zone-f',
      Array.from({ length: HEARTBEAT_FLOOD }, () => frame),
    );
    await cp.proc.waitForLog(
      (l) => /closing agent session: over the frame rate limit/.test(String(l['msg'])),
      'a log line naming the rate limit',
    );
  });

  it('closes a progress flood over the frame budget; the API and a healthy agent keep working', async () => {
    await floodIsCut(
      'zone-g',
      Array.from({ length: PROGRESS_FLOOD }, (_, i) =>
        encodeFrame({
          progress: { spoolSeq: i + 1, taskId: 'tsk_flood', attempt: 1, percent: 1, message: 'x', atMs: Date.now() },
        }),
      ),
    );
  });

  it('does not cut off a real agent replaying a spool backlog many times the burst', async () => {
    const { stateDir } = await stack.enroll('zone-b', 'backlog-host');
    const before = await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m);
    // Reports spooled while the agent was cut off, as an agent before the log wrote them (one
    // file each): the agent moves them into its log when it starts.
    const spool = path.join(stateDir, 'spool');
    fs.mkdirSync(spool, { recursive: true });
    const backlog = 15 * FRAME_BURST;
    const at = Date.now() - 60_000;
    for (let seq = 1; seq <= backlog; seq++) {
      const body = { taskId: 'tsk_gone', attempt: 1, percent: seq % 100, message: 'step', atMs: at, spoolSeq: seq };
      fs.writeFileSync(
        path.join(spool, `${String(seq).padStart(16, '0')}.json`),
        JSON.stringify({ seq, kind: 'progress', body }),
      );
    }
    fs.writeFileSync(path.join(spool, 'ceiling'), String(backlog));
    const agent = await stack.runAgent(stateDir);
    await waitFor(() => fs.existsSync(path.join(stateDir, 'wal')), 'the agent to open its log');
    await waitFor(() => !fs.existsSync(spool), 'the old spool files to be migrated');
    await waitFor(() => unacknowledgedSeqs(stateDir).length === 0, 'the whole backlog to be acknowledged', 60_000);
    expect(agent.logs().filter((l) => l['msg'] === 'agent connected')).toHaveLength(1);
    expect(agent.logs().filter((l) => l['msg'] === 'control plane connection closed')).toHaveLength(0);
    expect(await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m)).toBe(before);
  });

  it('closes the session on an impossible number in a report and stores nothing of it', async () => {
    const raw = await rawAgent('zone-t');
    const instanceId = await tenantInstance('zone-t');
    const taskId = await backup(tenant, instanceId);
    const MAX = '9223372036854775807'; // 2^63 - 1
    let seq = 1;
    const bad = async (body: (attempt: number) => wire.IEnvelope, running: boolean, reason: RegExp) => {
      const s = await RawAgent.connect(cp, raw, running ? { running: [{ taskId, attempt: 1 }] } : {});
      if (!running) await s.next('assign');
      s.send(body(1));
      const closed = await s.closedBy();
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(reason);
    };
    const big = Number(MAX);
    await bad((attempt) => ({ accepted: { spoolSeq: seq++, taskId, attempt, atMs: big } }), false, /at_ms/);
    await bad((attempt) => ({ accepted: { spoolSeq: seq++, taskId, attempt, atMs: -1 } }), false, /at_ms/);
    expect((await tenant.expect<TaskBody>(200, 'GET', `/v1/tasks/${taskId}`)).state).toBe('dispatched');
    // Now accepted properly, then every bad kind of report on a running task.
    const ok = await RawAgent.connect(cp, raw);
    await ok.next('assign');
    const acceptSeq = seq++;
    ok.send({ accepted: { spoolSeq: acceptSeq, taskId, attempt: 1, atMs: Date.now() } });
    await ok.acked(acceptSeq);
    ok.close();
    const progress = (fields: Partial<wire.IProgress>) => (attempt: number) => ({
      progress: { spoolSeq: seq++, taskId, attempt, percent: 5, atMs: Date.now(), ...fields },
    });
    await bad(progress({ atMs: big }), true, /at_ms/);
    await bad(progress({ atMs: -5 }), true, /at_ms/);
    await bad(progress({ percent: Number.NaN }), true, /percent NaN/);
    await bad(progress({ percent: -1 }), true, /percent/);
    await bad(progress({ percent: 1e300 }), true, /percent/);
    await bad(progress({ bytesDone: big }), true, /bytes_done/);
    await bad(progress({ spoolSeq: big }), true, /spool_seq/);
    const event = (fields: Partial<wire.IEvent>) => (attempt: number) => ({
      event: { spoolSeq: seq++, taskId, attempt, type: 'x.y', message: 'm', atMs: Date.now(), ...fields },
    });
    await bad(event({ atMs: big }), true, /at_ms/);
    await bad(event({ atMs: -1 }), true, /at_ms/);
    await bad(event({ type: 't'.repeat(101) }), true, /event type/);
    await bad(
      (attempt) => ({ result: { spoolSeq: seq++, taskId, attempt, atMs: big, ok: { outputJson: '{}' } } }),
      true,
      /at_ms/,
    );
    await bad(
      (attempt) => ({
        result: {
          spoolSeq: seq++,
          taskId,
          attempt,
          atMs: Date.now(),
          ok: { backup: { externalId: 'e', sizeBytes: big, mode: 'FULL' } },
        },
      }),
      true,
      /size_bytes/,
    );
    // A ReportBatch is checked report by report: one bad report closes the session, and the good
    // ones before it in the frame are not stored either.
    const batch =
      (...reports: ((attempt: number) => wire.IEnvelope)[]) =>
      (attempt: number): wire.IEnvelope => ({
        reportBatch: { reports: reports.map((r) => r(attempt) as wire.IBatchedReport) },
      });
    await bad(
      batch(progress({ percent: 10 }), progress({ percent: 20 }), progress({ percent: -1 })),
      true,
      /^report 3 of the report_batch frame \(progress\): percent -1 is not between 0 and 100/,
    );
    await bad(batch(progress({ percent: 10 }), event({ atMs: -1 })), true, /^report 2 .*\(event\): at_ms/);
    await bad(
      batch(progress({ percent: 10 }), () => ({})),
      true,
      /^report 2 .*\(empty\) carries no report/,
    );
    await bad(batch(), true, /^report_batch frame carries no reports/);
    const many = Array.from({ length: 65 }, () => progress({ percent: 10 }));
    await bad(batch(...many), true, /^report_batch frame carries 65 reports, the limit is 64/);
    const task = await tenant.expect<TaskBody & { startedAt: string }>(200, 'GET', `/v1/tasks/${taskId}`);
    expect(task.state).toBe('running');
    expect(Date.parse(task.startedAt)).toBeGreaterThan(Date.now() - 120_000);
    expect((await tenant.expect(200, 'GET', `/v1/tasks/${taskId}/progress`)).items).toHaveLength(0);
    await readsAnswer(taskId);
    expect(await metric(cp, /^cairn_agent_session_errors_total\{code="1008"\} (\d+)/m)).toBeGreaterThanOrEqual(19);
  });

  it('stores the reports of a ReportBatch frame in order, acknowledges each, and takes the same batch again as done', async () => {
    const raw = await rawAgent('zone-r');
    const instanceId = await tenantInstance('zone-r');
    const taskId = await backup(tenant, instanceId);
    const s = await RawAgent.connect(cp, raw);
    const welcome = await s.next('welcome');
    expect(welcome.welcome?.acceptsReportBatch).toBe(true);
    await s.next('assign');
    const now = Date.now();
    const frame: wire.IEnvelope = {
      reportBatch: {
        reports: [
          { accepted: { spoolSeq: 1, taskId, attempt: 1, atMs: now } },
          { progress: { spoolSeq: 2, taskId, attempt: 1, percent: 40, atMs: now } },
          { progress: { spoolSeq: 3, taskId, attempt: 1, percent: 80, atMs: now } },
          {
            result: {
              spoolSeq: 4,
              taskId,
              attempt: 1,
              atMs: now,
              ok: { backup: { externalId: 'b-1', sizeBytes: 1, mode: 'FULL' } },
            },
          },
        ],
      },
    };
    s.send(frame);
    for (const seq of [1, 2, 3, 4]) await s.acked(seq);
    // Sent again (a replay after a lost ack): acknowledged again, nothing stored twice.
    s.send(frame);
    const acksOf4 = () => s.received.filter((f) => (f.ack?.spoolSeqs ?? []).map(Number).includes(4)).length;
    await waitFor(() => acksOf4() === 2, 'the batch acknowledged again');
    expect(s.closed).toBeUndefined();
    expect((await tenant.expect<TaskBody>(200, 'GET', `/v1/tasks/${taskId}`)).state).toBe('succeeded');
    const progress = (await tenant.expect(200, 'GET', `/v1/tasks/${taskId}/progress`)).items as { percent: number }[];
    expect(progress.map((p) => p.percent)).toEqual([40, 80]);
    const backups = await admin.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}`);
    expect(backups.items).toHaveLength(1);
    s.close();
  });

  it('stores oversize text and JSON from an agent cut visibly, the same on both backends, and keeps the session', async () => {
    const raw = await rawAgent('zone-s');
    const instanceId = await tenantInstance('zone-s');
    const taskId = await backup(tenant, instanceId);
    const s = await RawAgent.connect(cp, raw);
    await s.next('assign');
    const long = 'é'.repeat(40_000); // 80,000 bytes
    const now = Date.now();
    s.send({ accepted: { spoolSeq: 1, taskId, attempt: 1, atMs: now } });
    s.send({ progress: { spoolSeq: 2, taskId, attempt: 1, percent: 50, message: 'p'.repeat(70_000), atMs: now } });
    s.send({
      event: {
        spoolSeq: 3,
        taskId,
        attempt: 1,
        type: 'provider.note',
        message: long,
        dataJson: JSON.stringify({ text: long }),
        atMs: now,
      },
    });
    s.send({
      result: {
        spoolSeq: 4,
        taskId,
        attempt: 1,
        atMs: now,
        ok: {
          backup: { externalId: 'ext-1', sizeBytes: 10, addedBytes: 10, mode: 'FULL' },
          outputJson: JSON.stringify({ blob: 'o'.repeat(70_000) }),
        },
      },
    });
    await s.acked(4);
    expect(s.closed).toBeUndefined();
    const task = await tenant.expect<TaskBody & { output: Record<string, unknown> }>(200, 'GET', `/v1/tasks/${taskId}`);
    expect(task.state).toBe('succeeded');
    expect(task.output).toMatchObject({ cairnTruncated: true, field: 'task output' });
    const progress = (await tenant.expect(200, 'GET', `/v1/tasks/${taskId}/progress`)).items as { message: string }[];
    expect(progress).toHaveLength(1);
    expect(progress[0]!.message).toMatch(/^p+… \[\d+ bytes cut\]$/);
    expect(Buffer.byteLength(progress[0]!.message)).toBeLessThanOrEqual(8192);
    const events = (await tenant.expect(200, 'GET', '/v1/events?limit=500')).items as {
      type: string;
      message: string;
      data: unknown;
    }[];
    const note = events.find((e) => e.type === 'provider.note')!;
    expect(note.message).toMatch(/^é+… \[\d+ bytes cut\]$/);
    expect(note.data).toMatchObject({ cairnTruncated: true, field: 'event data' });
    s.close();
    await readsAnswer(taskId);
  });

  it('afterwards every list route answers 200 for every role', async () => {
    const user = await admin.expect(201, 'POST', `/v1/tenants/${tenantId}/tokens`, {
      role: 'tenant-user',
      name: 'after',
    });
    await everyListAnswers(cp.url, { spAdmin: cp.adminToken, tenantAdmin: tenant.token, tenantUser: user.token }, [
      'zone-a',
    ]);
  });
});
