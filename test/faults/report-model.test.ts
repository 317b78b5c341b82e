/**
 * F5, a model test of the report protocol: fast-check generates what an agent sends about a few
 * tasks (accepted, progress, events, results, refusals), and breaks it the ways a network and an
 * agent's restarts do: frames sent twice, two frames swapped, the connection dropped and a new
 * session replaying every report not yet acknowledged, old frames replayed, reports of a superseded
 * attempt and about tasks the agent does not hold. The agent is the suite's own raw client
 * (`test/harness/raw-agent.ts`: the real codec over a real WebSocket, enrolled through the API),
 * against a real control plane; the tasks are backups made through the API and given to it by the
 * dispatcher. A model (`test/harness/report-model.ts`) is told every report in the order the
 * control plane takes it and says what it must hold; the checker reads the tasks, their progress,
 * their events and their backup records through the API and compares. On a mismatch fast-check
 * shrinks the sequence and prints it with its seed (`CAIRN_TEST_FAULTS_SEED=<n>` replays a run).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, type wire } from '@cairn/proto';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { allPages } from '@cairn/test-harness/lists';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { RawAgent } from '@cairn/test-harness/raw-agent';
import {
  MODEL_FAILURE_CODE,
  modelExternalId,
  REPORT_KINDS,
  ReportModel,
  type Action,
  type ModelReport,
  type ReportKind,
} from '@cairn/test-harness/report-model';
import { assignOffering, offerDummy, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const RUNS = LONG ? 500 : 40;
const ZONE = 'zone-f5';
/** A zone no agent serves: its backup stays queued, held by no one. */
const IDLE_ZONE = 'zone-f5-idle';
const EVENT_TYPE = 'f5.note';
/** A task id no task has. */
const NO_TASK = 'tsk_f5_no_such_task';

const kind = fc.constantFrom(...REPORT_KINDS);
/** Refusals are rarer than the rest: most of a sequence should reach a running task. */
const reportKind = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<ReportKind>('accepted', 'progress', 'progress', 'event', 'event') },
  { weight: 2, arbitrary: fc.constantFrom<ReportKind>('result-ok', 'result-fail') },
  { weight: 1, arbitrary: fc.constant<ReportKind>('rejected') },
);
const percent = fc.integer({ min: 0, max: 100 });
const task = fc.nat({ max: 3 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ do: fc.constant('report' as const), task, kind: reportKind, percent }) },
  {
    weight: 2,
    arbitrary: fc.record({ do: fc.constant('swap' as const), task, first: reportKind, second: reportKind, percent }),
  },
  { weight: 3, arbitrary: fc.record({ do: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ do: 'reconnect' as const }) },
  { weight: 1, arbitrary: fc.record({ do: fc.constant('stale' as const), task, kind }) },
  { weight: 1, arbitrary: fc.record({ do: fc.constant('foreign' as const), kind, unknown: fc.boolean() }) },
);
const sequence = fc.record({
  tasks: fc.integer({ min: 2, max: 4 }),
  actions: fc.array(action, { minLength: 10, maxLength: 40 }),
});

/** What the runs sent and found, summed over a case (the printed figures). */
interface Figures {
  runs: number;
  actions: number;
  tasks: number;
  frames: number;
  duplicates: number;
  replayed: number;
  swaps: number;
  reconnects: number;
  stale: number;
  foreign: number;
  requeued: number;
  succeeded: number;
  failed: number;
  running: number;
  progressStored: number;
  eventsStored: number;
  lost: number;
  doubled: number;
}

interface Sent {
  report: ModelReport;
  frame: Uint8Array;
}

/**
 * The agent's side of one run: a raw session (replaced on each reconnect), every report it sent
 * in the order it first sent it (its spool), what the control plane acknowledged, and the model,
 * told every frame as it goes out. A reconnect waits until the control plane shows the old session
 * gone, so whatever that session delivered is applied before the new session's first report: the
 * model is told the reports in the order the control plane takes them. The new session's hello
 * lists every attempt the agent was given (so none is sent again), and it replays every
 * unacknowledged report in spool order, as a real agent does.
 */
class ModelAgent {
  readonly model = new ReportModel();
  readonly spool: Sent[] = [];
  readonly sessions: RawAgent[] = [];
  /** The latest attempt of each task the dispatcher gave it. */
  readonly attempts = new Map<string, number>();
  private seq = 0;
  private raw!: RawAgent;

  constructor(
    private readonly cp: ControlPlaneProc,
    private readonly api: Api,
    private readonly agent: { agentId: string; credential: string },
    private readonly figures: Figures,
  ) {}

  async connect(): Promise<void> {
    const running = [...this.attempts].map(([taskId, attempt]) => ({ taskId, attempt }));
    this.raw = await RawAgent.connect(this.cp, this.agent, { slots: 16, running });
    this.sessions.push(this.raw);
    await waitFor(async () => (await this.agentState()) === 'connected', 'the control plane to take the session');
    const acked = this.acked();
    for (const s of this.spool) {
      if (acked.has(s.report.seq)) continue;
      this.figures.replayed++;
      await this.transmit(s);
    }
  }

  async reconnect(): Promise<void> {
    this.raw.terminate();
    await waitFor(async () => (await this.agentState()) !== 'connected', 'the control plane to see the session end');
    this.figures.reconnects++;
    await this.connect();
  }

  /** Waits for the dispatcher to give this agent `taskId` under `attempt`. */
  async assignment(taskId: string, attempt: number): Promise<void> {
    await this.raw.next('assign', (f) => f.assign?.taskId === taskId && f.assign.attempt === attempt, 20_000);
    this.attempts.set(taskId, attempt);
    this.model.assigned(taskId, attempt);
  }

  report(taskId: string, attempt: number, kind: ReportKind, pct = 0): Sent {
    const seq = ++this.seq;
    const base = { spoolSeq: seq, taskId, attempt, atMs: Date.now() };
    let body: wire.IEnvelope;
    switch (kind) {
      case 'accepted':
        body = { accepted: base };
        break;
      case 'rejected':
        body = { rejected: { ...base, reasonCode: 'NO_SLOT', message: 'f5: no slot' } };
        break;
      case 'progress':
        body = { progress: { ...base, percent: pct, bytesDone: pct, bytesTotal: 100, message: `f5 progress ${seq}` } };
        break;
      case 'event':
        body = { event: { ...base, type: EVENT_TYPE, message: `f5 event ${seq}`, dataJson: '' } };
        break;
      case 'result-ok':
        body = {
          result: {
            ...base,
            ok: { backup: { externalId: modelExternalId(taskId, seq), sizeBytes: 100, addedBytes: 100, mode: 'FULL' } },
          },
        };
        break;
      case 'result-fail':
        body = { result: { ...base, error: { code: MODEL_FAILURE_CODE, message: `f5 failure ${seq}` } } };
        break;
    }
    return { report: { seq, taskId, attempt, kind, percent: pct }, frame: encodeFrame(body) };
  }

  /** Sends reports for the first time, in this order; waits for a task handed back to be given out again. */
  async send(...reports: Sent[]): Promise<void> {
    this.spool.push(...reports);
    const requeued: ModelReport[] = [];
    for (const r of reports) if ((await this.transmit(r)) === 'requeued') requeued.push(r.report);
    for (const r of requeued) {
      this.figures.requeued++;
      await this.assignment(r.taskId, r.attempt + 1);
    }
  }

  /** Sends an earlier frame again, exactly as it was. */
  async duplicate(pick: number): Promise<void> {
    if (this.spool.length === 0) return;
    this.figures.duplicates++;
    await this.transmit(this.spool[pick % this.spool.length]!);
  }

  private async transmit(s: Sent) {
    if (this.raw.closed) throw new Error(`the control plane closed the session: ${JSON.stringify(this.raw.closed)}`);
    this.raw.sendMany([s.frame]);
    this.figures.frames++;
    return this.model.apply(s.report);
  }

  /** Every seq some session's Ack named. */
  acked(): Set<number> {
    const seqs = new Set<number>();
    for (const s of this.sessions)
      for (const f of s.received) if (f.body === 'ack') for (const q of f.ack!.spoolSeqs) seqs.add(Number(q));
    return seqs;
  }

  /** Waits until every report sent was acknowledged (the control plane closing the session fails it). */
  async settled(): Promise<void> {
    await waitFor(
      () => {
        if (this.raw.closed)
          throw new Error(`the control plane closed the session: ${JSON.stringify(this.raw.closed)}`);
        const acked = this.acked();
        return this.spool.every((s) => acked.has(s.report.seq));
      },
      'every report acknowledged',
      30_000,
    );
    const unknown = [...this.acked()].filter((q) => !this.spool.some((s) => s.report.seq === q));
    if (unknown.length > 0) throw new Error(`acknowledged seqs never sent: ${unknown.join(', ')}`);
  }

  close(): void {
    this.raw.terminate();
  }

  private async agentState(): Promise<string> {
    return (await this.api.expect<{ state: string }>(200, 'GET', `/v1/agents/${this.agent.agentId}`)).state;
  }
}

/** Counts of `want` (each once) against `got`: what is missing, what is there twice, what should not be. */
function compareOnce(want: Iterable<number>, got: number[]) {
  const wanted = new Set(want);
  const counts = new Map<number, number>();
  for (const g of got) counts.set(g, (counts.get(g) ?? 0) + 1);
  return {
    lost: [...wanted].filter((w) => !counts.has(w)),
    doubled: [...counts].filter(([, n]) => n > 1).map(([q]) => q),
    extra: [...counts.keys()].filter((q) => !wanted.has(q)),
  };
}

interface LoggedEvent {
  id: string;
  type: string;
  message: string;
  taskId: string | null;
}

/** The event log after `after` (by id, as the stream reads it). */
async function eventsAfter(api: Api, after: number): Promise<LoggedEvent[]> {
  const out: LoggedEvent[] = [];
  for (;;) {
    const page = await api.expect<{ items: LoggedEvent[] }>(200, 'GET', `/v1/events?after=${after}&limit=500`);
    out.push(...page.items);
    if (page.items.length < 500) return out;
    after = Number(page.items.at(-1)!.id);
  }
}

const seqOf = (message: string | null, prefix: string) =>
  message?.startsWith(prefix) ? Number(message.slice(prefix.length)) : undefined;

describe.each(backends)('F5: a model test of the report protocol (%s)', (backend) => {
  // Leases far longer than a run: losing a task is F3's case, and the raw agent sends no heartbeats.
  const stack = withStack(backend, { env: { CAIRN_TASK_LEASE_MS: '600000' } });

  it(
    `${RUNS} generated sequences of duplicated, reordered and replayed reports across reconnects match the model`,
    { timeout: LONG ? 3_600_000 : 300_000 },
    async () => {
      const api = stack.admin;
      const cp = stack.cp;
      const { offeringId } = await offerDummy(api, ZONE, { provider: 'f5', offering: 'f5' });
      const idle = await offerDummy(api, IDLE_ZONE, { provider: 'f5-idle', offering: 'f5-idle' });
      const idleInstance = await api.expect(201, 'POST', '/v1/instances', {
        name: 'f5-idle',
        zone: IDLE_ZONE,
        locator: { vm: 'idle' },
      });
      await assignOffering(api, idleInstance.id, idle.offeringId);
      // Every run (a shrink's included) makes instances of its own: room for the long variant's.
      await api.expect(200, 'PUT', `/v1/tenants/${idleInstance.tenantId}/quotas`, { instances: 100_000 });
      const unheld = (await api.expect<{ id: string }>(202, 'POST', `/v1/instances/${idleInstance.id}/backups`)).id;

      const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
      const figures: Figures = {
        runs: 0,
        actions: 0,
        tasks: 0,
        frames: 0,
        duplicates: 0,
        replayed: 0,
        swaps: 0,
        reconnects: 0,
        stale: 0,
        foreign: 0,
        requeued: 0,
        succeeded: 0,
        failed: 0,
        running: 0,
        progressStored: 0,
        eventsStored: 0,
        lost: 0,
        doubled: 0,
      };
      let run = 0;
      let lastEventId = 0;
      const startedAt = performance.now();

      const property = fc.asyncProperty(sequence, async ({ tasks: k, actions }) => {
        run++;
        const { token } = await api.expect<{ token: string }>(201, 'POST', '/v1/agent-enrollments', { zone: ZONE });
        const res = await fetch(`${cp.url}/v1/agents/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token, name: `f5-run-${run}` }),
        });
        expect(res.status).toBe(201);
        const enrolled = (await res.json()) as { agentId: string; credential: string };
        const agent = new ModelAgent(cp, api, enrolled, figures);
        try {
          await agent.connect();
          const taskIds: string[] = [];
          const instanceOf = new Map<string, string>();
          for (let i = 0; i < k; i++) {
            const inst = await api.expect(201, 'POST', '/v1/instances', {
              name: `f5-${run}-${i}`,
              zone: ZONE,
              locator: { vm: `f5-${run}-${i}` },
            });
            await assignOffering(api, inst.id, offeringId);
            const id = (await api.expect<{ id: string }>(202, 'POST', `/v1/instances/${inst.id}/backups`)).id;
            taskIds.push(id);
            instanceOf.set(id, inst.id as string);
          }
          for (const id of taskIds) await agent.assignment(id, 1);

          for (const a of actions) {
            const id = 'task' in a ? taskIds[a.task % k]! : '';
            const attempt = agent.attempts.get(id) ?? 1;
            switch (a.do) {
              case 'report':
                await agent.send(agent.report(id, attempt, a.kind, a.percent));
                break;
              case 'swap': {
                const first = agent.report(id, attempt, a.first, a.percent);
                const second = agent.report(id, attempt, a.second, 100 - a.percent);
                figures.swaps++;
                await agent.send(second, first);
                break;
              }
              case 'duplicate':
                await agent.duplicate(a.pick);
                break;
              case 'reconnect':
                await agent.reconnect();
                break;
              case 'stale':
                // A superseded attempt when there is one; otherwise one the task never reaches here.
                figures.stale++;
                await agent.send(agent.report(id, attempt > 1 ? attempt - 1 : attempt + 100, a.kind, 50));
                break;
              case 'foreign':
                figures.foreign++;
                await agent.send(agent.report(a.unknown ? NO_TASK : unheld, 1, a.kind, 50));
                break;
            }
          }
          await agent.settled();

          // The checker: the history through the API against the model.
          const off: string[] = [];
          const log = await eventsAfter(api, lastEventId);
          lastEventId = log.reduce((max, e) => Math.max(max, Number(e.id)), lastEventId);
          if (new Set(log.map((e) => e.id)).size !== log.length) off.push('an event id appears twice in the log');
          for (const id of taskIds) {
            const m = agent.model.tasks.get(id)!;
            const t = await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${id}`);
            if (t.state !== m.state) off.push(`${id}: state ${t.state}, the model says ${m.state}`);
            if (t.attempt !== m.attempt) off.push(`${id}: attempt ${t.attempt}, the model says ${m.attempt}`);
            const code = m.state === 'failed' ? MODEL_FAILURE_CODE : null;
            if ((t.error?.code ?? null) !== code) off.push(`${id}: error ${t.error?.code}, the model says ${code}`);
            const pct = ReportModel.percent(m);
            if (pct !== undefined && t.progress.percent !== pct)
              off.push(`${id}: ${t.progress.percent}%, the model says ${pct}%`);

            const rows = await allPages<{ message: string | null }>(api, `/v1/tasks/${id}/progress`);
            const progress = compareOnce(
              m.progress.keys(),
              rows.map((r) => seqOf(r.message, 'f5 progress ') ?? -1),
            );
            const events = log.filter((e) => e.taskId === id);
            const mine = compareOnce(
              m.events,
              events.filter((e) => e.type === EVENT_TYPE).map((e) => seqOf(e.message, 'f5 event ') ?? -1),
            );
            for (const [what, c] of [
              ['progress', progress],
              ['events', mine],
            ] as const) {
              if (c.lost.length) off.push(`${id}: ${what} of seqs ${c.lost.join(', ')} lost`);
              if (c.doubled.length) off.push(`${id}: ${what} of seqs ${c.doubled.join(', ')} stored more than once`);
              if (c.extra.length) off.push(`${id}: ${what} of seqs ${c.extra.join(', ')} stored, the model says not`);
              figures.lost += c.lost.length;
              figures.doubled += c.doubled.length;
            }
            const started = events.filter((e) => e.type === 'task.started').length;
            if (started !== m.started) off.push(`${id}: ${started} task.started events, the model says ${m.started}`);
            const ends = events.filter((e) => e.type === 'task.succeeded' || e.type === 'task.failed').length;
            if (ends !== m.ends) off.push(`${id}: ${ends} end events, the model says ${m.ends}`);
            const records = await allPages<{ externalId: string }>(api, `/v1/backups?instanceId=${instanceOf.get(id)}`);
            const wantRecords = m.state === 'succeeded' ? [modelExternalId(id, m.endedBy!)] : [];
            if (JSON.stringify(records.map((r) => r.externalId)) !== JSON.stringify(wantRecords))
              off.push(
                `${id}: backup records ${JSON.stringify(records.map((r) => r.externalId))}, the model says ${JSON.stringify(wantRecords)}`,
              );

            figures.tasks++;
            if (m.state === 'succeeded') figures.succeeded++;
            else if (m.state === 'failed') figures.failed++;
            else figures.running++;
            figures.progressStored += m.progress.size;
            figures.eventsStored += m.events.size;
          }
          // The task no agent holds: still queued, nothing of the reports about it kept.
          const u = await api.expect<TaskBody>(200, 'GET', `/v1/tasks/${unheld}`);
          if (u.state !== 'queued') off.push(`${unheld} (held by no agent): ${u.state}, the model says queued`);
          if ((await allPages(api, `/v1/tasks/${unheld}/progress`)).length > 0)
            off.push(`${unheld} (held by no agent): progress stored`);
          if (log.some((e) => e.type === EVENT_TYPE && !taskIds.includes(e.taskId ?? '')))
            off.push('an event kept of a task the agent does not hold');

          figures.runs++;
          figures.actions += actions.length;
          if (off.length > 0) throw new Error(`the control plane differs from the model:\n${off.join('\n')}`);
        } finally {
          agent.close();
        }
      });

      let failure: unknown;
      try {
        await fc.assert(property, { numRuns: RUNS, seed });
      } catch (err) {
        failure = err;
      }
      const s = (performance.now() - startedAt) / 1000;
      console.log(
        `F5 (${backend}) seed ${seed}: ${figures.runs} runs in ${s.toFixed(1)} s, ${figures.actions} actions, ${figures.tasks} tasks ` +
          `(${figures.succeeded} succeeded, ${figures.failed} failed, ${figures.running} still held), ${figures.frames} frames sent: ` +
          `${figures.duplicates} duplicated, ${figures.replayed} replayed after ${figures.reconnects} reconnects, ${figures.swaps} pairs swapped, ` +
          `${figures.stale} of another attempt, ${figures.foreign} about a task not held, ${figures.requeued} refusals that requeued; ` +
          `stored ${figures.progressStored} progress rows and ${figures.eventsStored} events; lost ${figures.lost}, doubled ${figures.doubled}`,
      );
      if (failure) throw failure;
      expect(figures.lost).toBe(0);
      expect(figures.doubled).toBe(0);
    },
  );
});
