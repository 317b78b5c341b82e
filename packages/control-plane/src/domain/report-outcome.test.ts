import {
  FailureCodes,
  RejectReasons,
  REPOSITORY_IDENTITY_EVENT,
  REPOSITORY_NOT_FOUND,
  SYNC_PAGE_EVENT,
} from '@cairn/proto/vocabulary';
import { describe, expect, it } from 'vitest';
import {
  decideReport,
  factsNeeded,
  NO_REPOSITORY_YET,
  type Report,
  type ReportedTask,
  type ReportFacts,
  type ResultOutcome,
} from './report-outcome.js';

const NOW = 1_000_000;
const LEASE = 60_000;

function task(extra: Partial<ReportedTask> = {}): ReportedTask {
  return {
    kind: 'backup',
    state: 'running',
    attempt: 2,
    agentId: 'a1',
    cancelRequested: false,
    startedAt: 900_000,
    zone: 'z1',
    pinnedAgentId: null,
    plugin: 'p',
    ...extra,
  };
}

const base = { seq: 7, taskId: 't1', attempt: 2, at: 950_000 };
const accepted: Report = { kind: 'accepted', ...base };
const rejected = (reasonCode: string): Report => ({ kind: 'rejected', ...base, reasonCode, message: 'said no' });
const progress: Report = {
  kind: 'progress',
  ...base,
  percent: 50,
  bytesDone: 5,
  bytesTotal: 10,
  message: '',
};
const event = (type: string, data: string | null = null): Report => ({
  kind: 'event',
  ...base,
  type,
  message: 'm',
  data,
});
const result = (outcome: ResultOutcome): Report => ({ kind: 'result', ...base, outcome });
const backup = { externalId: 'snap-1', sizeBytes: 10, addedBytes: 4, mode: 'full', parentExternalId: '' };

/** The facts of `report` about `t` (null: no such task). */
function facts(report: Report, t: ReportedTask | null = task(), extra: Partial<ReportFacts> = {}): ReportFacts {
  return { agentId: 'a1', report, task: t ?? undefined, now: NOW, leaseUntil: NOW + LEASE, ...extra };
}

describe('decideReport: the fence', () => {
  it('ignores a report of no task, of another agent, or of another attempt, whatever it says', () => {
    for (const report of [accepted, progress, event('x'), result({ ok: true, backup, output: null })]) {
      expect(decideReport(facts(report, null))).toMatchObject({ action: 'ignore', why: 'no such task' });
      expect(decideReport(facts(report, task({ agentId: 'a2' })))).toMatchObject({ action: 'ignore' });
      expect(decideReport(facts(report, task({ attempt: 3 })))).toMatchObject({
        action: 'ignore',
        why: "attempt 2 is not the task's attempt 3",
      });
    }
  });

  it('ignores everything but events once the task is no longer held', () => {
    for (const state of ['queued', 'succeeded', 'failed', 'cancelled', 'lost']) {
      const t = task({ state });
      expect(decideReport(facts(accepted, t))).toEqual({ action: 'ignore', why: `the task is ${state}` });
      expect(decideReport(facts(result({ ok: true, backup, output: null }), t))).toMatchObject({ action: 'ignore' });
      // A plugin's last words after its result still count.
      expect(decideReport(facts(event('plugin.note'), t))).toEqual({
        action: 'record-event',
        event: event('plugin.note'),
      });
    }
  });
});

describe('decideReport: event types an agent may not use', () => {
  it("ignores an event that would pass for the control plane's own record, and keeps the others", () => {
    const t = task({ state: 'running' });
    for (const type of [
      'task.succeeded',
      'maintenance.ready',
      'job.run_finished',
      'backup.deleted',
      'rpo.met',
      'agent.note',
      'provider.synced',
      'provider.sync_failed',
    ]) {
      expect(decideReport(facts(event(type), t))).toEqual({
        action: 'ignore',
        why: `the event type ${type} is the control plane's own: an agent may not report it`,
      });
    }
    for (const type of ['provider.message', 'warning', 'agent.events_dropped', 'restic.summary', 'tasks.note']) {
      expect(decideReport(facts(event(type), t))).toEqual({ action: 'record-event', event: event(type) });
    }
  });
});

describe('decideReport: what each report does', () => {
  it('an acceptance starts a dispatched task, once', () => {
    expect(decideReport(facts(accepted, task({ state: 'dispatched' })))).toEqual({
      action: 'start',
      from: ['dispatched'],
      changes: { state: 'running', startedAt: base.at, leaseExpiresAt: NOW + LEASE },
      event: { type: 'task.started', message: 'backup task started on agent a1' },
    });
    expect(decideReport(facts(accepted, task({ state: 'running' })))).toMatchObject({ action: 'ignore' });
  });

  it('progress moves the figures, the estimate and the lease from either held state', () => {
    expect(decideReport(facts(progress, task({ state: 'dispatched', startedAt: null })))).toEqual({
      action: 'progress',
      progress,
      from: ['dispatched', 'running'],
      changes: {
        state: 'running',
        startedAt: base.at,
        percent: 50,
        bytesDone: 5,
        bytesTotal: 10,
        progressMessage: null,
        etaSeconds: 0,
        leaseExpiresAt: NOW + LEASE,
      },
    });
  });

  it('a repository identity event is recorded when readable, ignored otherwise', () => {
    expect(decideReport(facts(event(REPOSITORY_IDENTITY_EVENT, '{"identity":"r1"}')))).toEqual({
      action: 'record-identity',
      identity: 'r1',
    });
    expect(decideReport(facts(event(REPOSITORY_IDENTITY_EVENT, null)))).toMatchObject({ action: 'ignore' });
  });

  it('a requeueing refusal hands the task back to the queue', () => {
    expect(decideReport(facts(rejected(RejectReasons.NO_SLOT), task({ state: 'dispatched' })))).toEqual({
      action: 'requeue',
      from: ['dispatched'],
      changes: { state: 'queued', agentId: null, leaseExpiresAt: null, dispatchedAt: null },
    });
  });

  it('any other refusal fails the task with its code and the agent message', () => {
    expect(decideReport(facts(rejected(RejectReasons.NO_PLUGIN), task({ state: 'dispatched' })))).toEqual({
      action: 'end',
      from: ['dispatched', 'running'],
      changes: {
        state: 'failed',
        endedAt: NOW,
        errorCode: RejectReasons.NO_PLUGIN,
        errorMessage: 'said no',
      },
      end: { state: 'failed', error: { code: RejectReasons.NO_PLUGIN, message: 'said no' }, output: null },
      event: { type: 'task.failed', message: 'backup task refused by agent a1: said no' },
      backup: null,
    });
  });

  it('a backup refused as draining fails under maintenance, and goes back to the queue without', () => {
    const t = task({ state: 'dispatched' });
    const report = rejected(RejectReasons.DRAINING);
    expect(factsNeeded(facts(report, t))).toEqual({ maintenance: true, repositoryHistory: false, syncPages: false });
    const global = { scopes: [{ scope: { kind: 'global' as const }, message: 'upgrade tonight' }], agents: [] };
    expect(decideReport(facts(report, t, { maintenance: global }))).toMatchObject({
      action: 'end',
      end: { state: 'failed', error: { code: 'maintenance', message: 'upgrade tonight' } },
    });
    expect(decideReport(facts(report, t, { maintenance: { scopes: [], agents: [] } }))).toMatchObject({
      action: 'requeue',
    });
    expect(() => decideReport(facts(report, t))).toThrow(/maintenance fact/);
    // Not a backup: no maintenance to read.
    expect(factsNeeded(facts(report, task({ kind: 'restore' })))).toEqual({
      maintenance: false,
      repositoryHistory: false,
      syncPages: false,
    });
  });

  it("a backup's success ends it with its backup to record; a success without one records none", () => {
    expect(decideReport(facts(result({ ok: true, backup, output: '{"a":1}' })))).toEqual({
      action: 'end',
      from: ['dispatched', 'running'],
      changes: { state: 'succeeded', endedAt: NOW, startedAt: 900_000, percent: 100, etaSeconds: 0, output: '{"a":1}' },
      end: { state: 'succeeded', error: null, output: '{"a":1}' },
      event: { type: 'task.succeeded', message: 'backup task succeeded' },
      backup,
    });
    expect(decideReport(facts(result({ ok: true, backup: null, output: null })))).toMatchObject({ backup: null });
    expect(decideReport(facts(result({ ok: true, backup, output: null }), task({ kind: 'restore' })))).toMatchObject({
      action: 'end',
      backup: null,
    });
  });

  it('a failure ends the task failed, or cancelled when a cancel was asked for', () => {
    const failure = result({ ok: false, code: 'PLUGIN_CRASHED', message: 'boom', retryable: false });
    expect(decideReport(facts(failure))).toMatchObject({
      action: 'end',
      changes: { state: 'failed', errorCode: 'PLUGIN_CRASHED', errorMessage: 'boom' },
      end: { state: 'failed', error: { code: 'PLUGIN_CRASHED', message: 'boom' }, output: null },
      event: { type: 'task.failed', message: 'backup task failed: PLUGIN_CRASHED: boom' },
    });
    const cancelled = result({ ok: false, code: FailureCodes.CANCELLED, message: 'stopped', retryable: false });
    expect(decideReport(facts(cancelled, task({ cancelRequested: true })))).toMatchObject({
      end: { state: 'cancelled' },
      event: { type: 'task.cancelled' },
    });
  });
});

describe('decideReport: a sync', () => {
  const sync = task({ kind: 'sync' });

  it('a listing that cannot be read fails it', () => {
    expect(decideReport(facts(result({ ok: true, backup: null, output: 'not json' }), sync))).toMatchObject({
      action: 'end',
      end: { state: 'failed', error: { code: FailureCodes.INVALID_RESULT } },
    });
  });

  it('no repository through a connection that never reached one succeeds empty; otherwise it fails', () => {
    const notFound = result({ ok: false, code: REPOSITORY_NOT_FOUND, message: 'nothing there', retryable: false });
    expect(factsNeeded(facts(notFound, sync))).toEqual({
      maintenance: false,
      repositoryHistory: true,
      syncPages: false,
    });
    expect(
      decideReport(facts(notFound, sync, { repositoryHistory: { identityRecorded: false, recorded: false } })),
    ).toMatchObject({
      action: 'end',
      changes: { state: 'succeeded', output: '[]', progressMessage: NO_REPOSITORY_YET },
      end: { state: 'succeeded', error: null, output: '[]', noRepository: 'nothing there' },
      event: { message: `sync task succeeded: ${NO_REPOSITORY_YET}` },
    });
    expect(
      decideReport(facts(notFound, sync, { repositoryHistory: { identityRecorded: true, recorded: false } })),
    ).toMatchObject({ action: 'end', end: { state: 'failed', error: { code: REPOSITORY_NOT_FOUND } } });
    // A stale report needs no history read.
    expect(factsNeeded(facts(notFound, task({ kind: 'sync', attempt: 1 })))).toEqual({
      maintenance: false,
      repositoryHistory: false,
      syncPages: false,
    });
  });
});

describe('decideReport: a paged sync listing', () => {
  const sync = task({ kind: 'sync' });
  const point = '{"externalId":"p1","createdAt":"2026-01-01T00:00:00Z","sizeBytes":5}';
  const paged = result({ ok: true, backup: null, output: '{"cairnPages":2,"points":3}' });
  const stored = (pages: number, points: number, bad: string | null = null) => ({
    syncPages: { pages, lastPage: pages - 1, points, bad },
  });

  it('stores a page of a running sync, shown to no one; a page of anything else is no page', () => {
    const page = event(SYNC_PAGE_EVENT, `{"page":1,"points":[${point}]}`);
    expect(decideReport(facts(page, sync))).toEqual({
      action: 'record-sync-page',
      page: 1,
      points: 1,
      body: `[${point}]`,
      bad: null,
    });
    expect(decideReport(facts(page, task({ kind: 'sync', state: 'succeeded' })))).toMatchObject({ action: 'ignore' });
    expect(decideReport(facts(page, task({ kind: 'backup' })))).toMatchObject({ action: 'ignore' });
    expect(decideReport(facts(event(SYNC_PAGE_EVENT, '{"points":[]}'), sync))).toMatchObject({ action: 'ignore' });
    // A page with a bad point is kept as bad: the result then fails with its reason.
    expect(decideReport(facts(event(SYNC_PAGE_EVENT, '{"page":0,"points":[{"externalId":7}]}'), sync))).toMatchObject({
      action: 'record-sync-page',
      page: 0,
      bad: /^page 0: point 0: externalId/,
    });
  });

  it('succeeds only when every page arrived and the points add up; otherwise fails and marks nothing', () => {
    expect(factsNeeded(facts(paged, sync))).toMatchObject({ syncPages: true });
    expect(factsNeeded(facts(result({ ok: true, backup: null, output: '[]' }), sync))).toMatchObject({
      syncPages: false,
    });
    expect(() => decideReport(facts(paged, sync))).toThrow(/syncPages fact/);
    expect(decideReport(facts(paged, sync, stored(2, 3)))).toMatchObject({
      action: 'end',
      end: { state: 'succeeded' },
    });
    const failed = (extra: Partial<ReportFacts>) => decideReport(facts(paged, sync, extra));
    expect(failed(stored(1, 2))).toMatchObject({
      end: { state: 'failed', error: { code: FailureCodes.INVALID_RESULT, message: /1 of its 2 pages arrived/ } },
    });
    expect(failed({ syncPages: { pages: 2, lastPage: 2, points: 3, bad: null } })).toMatchObject({
      end: { state: 'failed', error: { message: /2 of its 2 pages/ } },
    });
    expect(failed(stored(2, 2))).toMatchObject({ end: { state: 'failed', error: { message: /hold 2 .* counts 3/ } } });
    expect(failed(stored(2, 3, 'page 1: point 4: bad'))).toMatchObject({
      end: { state: 'failed', error: { message: 'page 1: point 4: bad' } },
    });
  });
});
