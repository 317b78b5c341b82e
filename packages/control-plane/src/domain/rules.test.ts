import { describe, expect, it } from 'vitest';
import { backupName } from './backup-name.js';
import { fairOrder, rejectionOutcome } from './dispatch-rules.js';
import { unfit, type AgentCandidate } from './placement.js';
import { canTransition, etaSeconds, outcomeState, TASK_STATES, TERMINAL_STATES } from './task.js';

describe('task state machine', () => {
  it.each([
    ['queued', 'dispatched', true],
    ['dispatched', 'running', true],
    ['running', 'succeeded', true],
    ['running', 'lost', true],
    ['dispatched', 'queued', true],
    ['queued', 'running', false],
    ['running', 'queued', false],
    ['succeeded', 'failed', false],
  ] as const)('%s → %s allowed: %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });

  it('never leaves a terminal state', () => {
    for (const from of TERMINAL_STATES) for (const to of TASK_STATES) expect(canTransition(from, to)).toBe(false);
  });

  it.each([
    [{ ok: true }, false, 'succeeded'],
    [{ ok: false, errorCode: 'DISK_FULL' }, false, 'failed'],
    [{ ok: false, errorCode: 'CANCELLED' }, true, 'cancelled'],
    [{ ok: false, errorCode: 'CANCELLED' }, false, 'failed'],
  ] as const)('result %j with cancel requested %s ends %s', (result, cancelRequested, state) => {
    expect(outcomeState(result, cancelRequested)).toBe(state);
  });

  it('estimates the time left from the rate so far', () => {
    expect(etaSeconds(0, 10_000, 25)).toBe(30);
    expect(etaSeconds(null, 10_000, 25)).toBeNull();
    expect(etaSeconds(0, 10_000, 0)).toBeNull();
    expect(etaSeconds(0, 10_000, 100)).toBe(0);
  });
});

describe('fair order', () => {
  const t = (id: string, tenantId: string, priority: number) => ({ id, tenantId, priority });

  it('puts higher priority first and lets tenants take turns within one priority', () => {
    const sorted = [
      t('h1', 'b', 60),
      t('a1', 'a', 0),
      t('a2', 'a', 0),
      t('a3', 'a', 0),
      t('b1', 'b', 0),
      t('c1', 'c', 0),
    ];
    // b's high-priority task counts as a slot b holds: at priority 0, a and c catch up first; then b, served longest ago.
    expect(fairOrder(sorted).map((x) => x.id)).toEqual(['h1', 'a1', 'c1', 'b1', 'a2', 'a3']);
  });

  it('puts a tenant that already runs tasks after one that runs none, then shares evenly', () => {
    const sorted = [t('a2', 'a', 0), t('a3', 'a', 0), t('a4', 'a', 0), t('b1', 'b', 0), t('b2', 'b', 0)];
    expect(fairOrder(sorted, new Map([['a', 1]])).map((x) => x.id)).toEqual(['b1', 'a2', 'b2', 'a3', 'a4']);
    expect(fairOrder(sorted, new Map([['a', 5]])).map((x) => x.id)).toEqual(['b1', 'b2', 'a2', 'a3', 'a4']);
    // Priority still comes first, whatever a tenant holds.
    expect(fairOrder([t('a9', 'a', 60), t('b9', 'b', 0)], new Map([['a', 9]])).map((x) => x.id)).toEqual(['a9', 'b9']);
  });

  it('shares the tenants’ band between tenants whatever priority they use; a tenant’s priority orders only its own', () => {
    const sorted = [t('a1', 'a', 49), t('a2', 'a', 49), t('a3', 'a', 49), t('b1', 'b', 0), t('b2', 'b', 0)];
    expect(fairOrder(sorted).map((x) => x.id)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    // Within a tenant: higher first, then enqueue order, whatever order the input interleaves them in.
    const mixed = [t('a1', 'a', 10), t('b1', 'b', 0), t('a2', 'a', 40), t('a3', 'a', 10)];
    expect(fairOrder(mixed).map((x) => x.id)).toEqual(['a2', 'b1', 'a1', 'a3']);
    // The provider's band stays above, strictly by priority.
    expect(fairOrder([t('a49', 'a', 49), t('b50', 'b', 50), t('a99', 'a', 99)]).map((x) => x.id)).toEqual([
      'a99',
      'b50',
      'a49',
    ]);
  });

  it('keeps every task exactly once', () => {
    const sorted = Array.from({ length: 50 }, (_, i) => t(`t${i}`, `ten${i % 7}`, 10 - Math.floor(i / 10)));
    const out = fairOrder(sorted);
    expect(out).toHaveLength(50);
    expect(new Set(out.map((x) => x.id)).size).toBe(50);
  });
});

describe('placement', () => {
  const agent: AgentCandidate = {
    id: 'agt_1',
    zone: 'z1',
    slots: 2,
    held: 0,
    plugins: [{ name: '@cairn/plugin-dummy', capabilities: ['backup', 'restore'] }],
    draining: false,
    shuttingDown: false,
  };
  const task = { kind: 'backup', plugin: '@cairn/plugin-dummy', zone: 'z1', pinnedAgentId: null };

  it.each([
    ['fits', agent, task, null],
    ['other zone', agent, { ...task, zone: 'z2' }, 'other zone'],
    ['pinned elsewhere', agent, { ...task, pinnedAgentId: 'agt_2' }, 'pinned to another agent'],
    ['missing plugin', agent, { ...task, plugin: 'cairn-plugin-restic' }, 'plugin cairn-plugin-restic not loaded'],
    [
      'missing capability',
      agent,
      { ...task, kind: 'delete-backup' },
      'plugin @cairn/plugin-dummy cannot delete-backup',
    ],
    ['full', { ...agent, held: 2 }, task, 'no free slot'],
    ['draining refuses backups', { ...agent, draining: true }, task, 'draining'],
    ['draining keeps restores', { ...agent, draining: true }, { ...task, kind: 'restore' }, null],
    [
      'shutting down takes no restore either',
      { ...agent, shuttingDown: true },
      { ...task, kind: 'restore' },
      'shutting down',
    ],
  ] as const)('%s', (_name, a, t, why) => {
    expect(unfit(a, t)).toBe(why);
  });
});

describe('rejections', () => {
  it.each([
    ['NO_SLOT', { requeue: true }],
    ['DRAINING', { requeue: true }],
    ['SHUTTING_DOWN', { requeue: true }],
    ['NO_PLUGIN', { requeue: false, code: 'NO_PLUGIN' }],
    ['', { requeue: false, code: 'REJECTED' }],
  ] as const)('%s → %j', (reason, outcome) => {
    expect(rejectionOutcome(reason)).toEqual(outcome);
  });
});

describe('backup names', () => {
  it('follow <instance>.<DD>-<Mon> <HH.MM.SS> in UTC', () => {
    expect(backupName('web-1', Date.UTC(2026, 10, 24, 9, 5, 7))).toBe('web-1.24-Nov 09.05.07');
    expect(backupName('db', Date.UTC(2027, 0, 3, 23, 59, 59))).toBe('db.03-Jan 23.59.59');
  });
});
