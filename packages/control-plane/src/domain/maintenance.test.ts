import { describe, expect, it } from 'vitest';
import {
  admission,
  admitQueued,
  zoneAgentsInMaintenance,
  waits,
  waitingPlaces,
  agentMaintenance,
  agentTakesBackups,
  covering,
  drainFor,
  scopeKey,
  scopeKeysAt,
  type QueuedWork,
  DEFAULT_MAINTENANCE_MESSAGE,
  isReady,
  maintenanceMessage,
  type Maintenance,
  type WorkPlace,
  type ZoneAgent,
} from './maintenance.js';
import { TASK_KINDS } from './task.js';

const global: Maintenance = { scope: { kind: 'global' }, message: 'global' };
const zoneA: Maintenance = { scope: { kind: 'zone', zone: 'zone-a' }, message: 'zone a' };
const agent1: Maintenance = { scope: { kind: 'agent', agentId: 'agt_1' }, message: 'agent 1' };
/** Scopes alone: no agent drained on its host anywhere. */
const only = (...scopes: Maintenance[]) => ({ scopes, agents: [] });

const places: Record<string, WorkPlace> = {
  'agent 1 in zone a': { zone: 'zone-a', agentId: 'agt_1' },
  'agent 2 in zone a': { zone: 'zone-a', agentId: 'agt_2' },
  'zone a, no agent yet': { zone: 'zone-a', agentId: null },
  'agent 3 in zone b': { zone: 'zone-b', agentId: 'agt_3' },
};

// Which message a backup at each place fails with, per set of scopes in maintenance (null: allowed).
const backupCases: [string, Maintenance[], Record<string, string | null>][] = [
  [
    'none',
    [],
    { 'agent 1 in zone a': null, 'agent 2 in zone a': null, 'zone a, no agent yet': null, 'agent 3 in zone b': null },
  ],
  [
    'global',
    [global],
    {
      'agent 1 in zone a': 'global',
      'agent 2 in zone a': 'global',
      'zone a, no agent yet': 'global',
      'agent 3 in zone b': 'global',
    },
  ],
  [
    'zone a',
    [zoneA],
    {
      'agent 1 in zone a': 'zone a',
      'agent 2 in zone a': 'zone a',
      'zone a, no agent yet': 'zone a',
      'agent 3 in zone b': null,
    },
  ],
  [
    'agent 1',
    [agent1],
    {
      'agent 1 in zone a': 'agent 1',
      'agent 2 in zone a': null,
      'zone a, no agent yet': null,
      'agent 3 in zone b': null,
    },
  ],
  [
    'all three: the narrowest message',
    [global, zoneA, agent1],
    {
      'agent 1 in zone a': 'agent 1',
      'agent 2 in zone a': 'zone a',
      'zone a, no agent yet': 'zone a',
      'agent 3 in zone b': 'global',
    },
  ],
];

describe('admission', () => {
  for (const [name, active, expected] of backupCases) {
    for (const [where, place] of Object.entries(places)) {
      for (const kind of TASK_KINDS) {
        const want = kind === 'backup' ? expected[where]! : null;
        it(`${name}: ${kind} at ${where} → ${want === null ? 'allowed' : `fails "${want}"`}`, () => {
          expect(admission(kind, only(...active), { ...place, plugin: 'dummy' })).toEqual(
            want === null ? { allowed: true } : { allowed: false, code: 'maintenance', message: want },
          );
        });
      }
    }
  }
});

describe('admission: a zone whose every able agent is in maintenance (drained on its host, or an API window)', () => {
  const agent = (
    id: string,
    zone: string,
    hostDrain: string | null,
    plugins = [dummy],
    apiWindow: string | null = null,
  ): ZoneAgent => ({ id, zone, plugins, apiWindow, hostDrain });
  /** An agent in a window set through the API (`PUT /v1/agents/{id}/maintenance`), not drained on its host. */
  const inWindow = (id: string, zone: string, message: string) => agent(id, zone, null, [dummy], message);
  const dummy = { name: 'dummy', capabilities: ['backup', 'restore'] };
  const backup = (zone: string, plugin = 'dummy', agentId: string | null = null) =>
    ({ zone, agentId, plugin }) as const;
  const verdict = (agents: ZoneAgent[], place: ReturnType<typeof backup>, scopes: Maintenance[] = []) =>
    admission('backup', { scopes, agents }, place);
  const refused = (message: string) => ({ allowed: false, code: 'maintenance', message });

  it('refuses an unpinned backup once every agent of the zone running its plugin is drained, with the first one’s message', () => {
    const both = [agent('agt_2', 'zone-a', 'two'), agent('agt_1', 'zone-a', 'one')];
    expect(verdict(both, backup('zone-a'))).toEqual(refused('one'));
    expect(zoneAgentsInMaintenance(both, 'backup', backup('zone-a'))).toEqual({
      scope: { kind: 'agent', agentId: 'agt_1' },
      message: 'one',
    });
    // The drain says more than the zone's own window, as an agent's notice does.
    expect(verdict(both, backup('zone-a'), [zoneA, global])).toEqual(refused('one'));
  });

  it('takes it while one able agent is not drained, connected or not', () => {
    const oneLive = [agent('agt_1', 'zone-a', 'one'), agent('agt_2', 'zone-a', null)];
    expect(verdict(oneLive, backup('zone-a'))).toEqual({ allowed: true });
    expect(zoneAgentsInMaintenance(oneLive, 'backup', backup('zone-a'))).toBeNull();
  });

  it('counts only the agents that can back up with the plugin, and only in the zone', () => {
    const agents = [
      agent('agt_1', 'zone-a', 'one'),
      // Another plugin, a plugin that cannot back up, another zone: none of them can take it.
      agent('agt_2', 'zone-a', null, [{ name: 'restic', capabilities: ['backup'] }]),
      agent('agt_3', 'zone-a', null, [{ name: 'dummy', capabilities: ['restore'] }]),
      agent('agt_4', 'zone-b', null),
    ];
    expect(verdict(agents, backup('zone-a'))).toEqual(refused('one'));
    expect(verdict(agents, backup('zone-a', 'restic'))).toEqual({ allowed: true });
    expect(verdict(agents, backup('zone-b'))).toEqual({ allowed: true });
  });

  it('leaves it queued when no agent of the zone runs the plugin (it waits for one, as before)', () => {
    expect(verdict([agent('agt_1', 'zone-a', 'one')], backup('zone-a', 'other'))).toEqual({ allowed: true });
    expect(verdict([], backup('zone-a'))).toEqual({ allowed: true });
  });

  it('leaves pinned backups to their agent’s own scope, and every other kind alone', () => {
    const both = [agent('agt_1', 'zone-a', 'one'), agent('agt_2', 'zone-a', 'two')];
    expect(verdict(both, backup('zone-a', 'dummy', 'agt_2'))).toEqual({ allowed: true });
    for (const kind of TASK_KINDS.filter((k) => k !== 'backup'))
      expect(admission(kind, { scopes: [], agents: both }, backup('zone-a'))).toEqual({ allowed: true });
  });

  it('counts an agent window set through the API as a drain: every able agent in one refuses, first by id', () => {
    const both = [inWindow('agt_2', 'zone-a', 'two'), inWindow('agt_1', 'zone-a', 'one')];
    expect(verdict(both, backup('zone-a'))).toEqual(refused('one'));
    // Still narrower than the zone's and the global window.
    expect(verdict(both, backup('zone-a'), [global, zoneA])).toEqual(refused('one'));
  });

  it('refuses a zone whose able agents are in maintenance either way, with the first agent’s message', () => {
    // The first by id is in an API window, the other drained on its host, and the other way round.
    expect(verdict([agent('agt_2', 'zone-a', 'two'), inWindow('agt_1', 'zone-a', 'one')], backup('zone-a'))).toEqual(
      refused('one'),
    );
    expect(verdict([inWindow('agt_2', 'zone-a', 'two'), agent('agt_1', 'zone-a', 'one')], backup('zone-a'))).toEqual(
      refused('one'),
    );
    // An agent in both: its API window's message, as its own maintenance state shows it.
    const both = agent('agt_1', 'zone-a', 'host', [dummy], 'api');
    expect(verdict([both, inWindow('agt_2', 'zone-a', 'two')], backup('zone-a'))).toEqual(refused('api'));
  });

  it('takes it while one able agent is in no window and not drained', () => {
    expect(verdict([inWindow('agt_1', 'zone-a', 'one'), agent('agt_2', 'zone-a', null)], backup('zone-a'))).toEqual({
      allowed: true,
    });
    // A window on an agent that cannot run the backup, or in another zone, does not count.
    const agents = [
      inWindow('agt_1', 'zone-a', 'one'),
      agent('agt_2', 'zone-a', null, [{ name: 'restic', capabilities: ['backup'] }]),
      agent('agt_3', 'zone-b', null),
    ];
    expect(verdict(agents, backup('zone-a', 'restic'))).toEqual({ allowed: true });
    expect(verdict(agents, backup('zone-b'))).toEqual({ allowed: true });
  });

  it('fails a queued backup of a zone whose every able agent is in an API window', () => {
    const agents = [inWindow('agt_1', 'zone-a', 'one'), inWindow('agt_2', 'zone-a', 'two')];
    const b = { kind: 'backup' as const, zone: 'zone-a', pinnedAgentId: null, plugin: 'dummy' };
    expect(admitQueued([b], { scopes: [], agents })).toEqual({
      admitted: [],
      refused: [{ task: b, message: 'one' }],
      waiting: [],
    });
  });

  it('fails such a backup waiting in the queue, and places the zone’s other work', () => {
    const agents = [agent('agt_1', 'zone-a', 'one')];
    const queued = (kind: QueuedWork['kind']) => ({ kind, zone: 'zone-a', pinnedAgentId: null, plugin: 'dummy' });
    const [b, r] = [queued('backup'), queued('restore')];
    expect(admitQueued([b, r], { scopes: [], agents })).toEqual({
      admitted: [r],
      refused: [{ task: b, message: 'one' }],
      waiting: [],
    });
  });
});

describe('covering', () => {
  it('lists the covering scopes narrowest first, whatever order they come in', () => {
    expect(covering([global, agent1, zoneA], places['agent 1 in zone a']!)).toEqual([agent1, zoneA, global]);
    expect(covering([global, agent1, zoneA], places['agent 3 in zone b']!)).toEqual([global]);
  });
});

describe('readiness and the message', () => {
  it('a scope is ready once no backup runs in it', () => {
    expect(isReady(0)).toBe(true);
    expect(isReady(1)).toBe(false);
  });

  it('takes the default message, a trimmed one, and refuses blank or over 1,000 characters', () => {
    expect(maintenanceMessage(undefined)).toEqual({ ok: true, message: DEFAULT_MAINTENANCE_MESSAGE });
    expect(maintenanceMessage('  back at 06:00  ')).toEqual({ ok: true, message: 'back at 06:00' });
    expect(maintenanceMessage('x'.repeat(1000))).toMatchObject({ ok: true });
    // 1,000 emoji are 2,000 UTF-16 units and still 1,000 characters.
    expect(maintenanceMessage('🔧'.repeat(1000))).toMatchObject({ ok: true });
    expect(maintenanceMessage('x'.repeat(1001))).toEqual({
      ok: false,
      problem: 'must be at most 1000 characters, got 1001',
    });
    expect(maintenanceMessage('   ')).toMatchObject({ ok: false, problem: expect.stringMatching(/blank/) });
  });
});

describe('scope keys', () => {
  it('names one row per scope, and every scope that could cover a place', () => {
    expect(scopeKey({ kind: 'global' })).toBe('global');
    expect(scopeKey({ kind: 'zone', zone: 'zone-a' })).toBe('zone:zone-a');
    expect(scopeKey({ kind: 'agent', agentId: 'agt_1' })).toBe('agent:agt_1');
    expect(scopeKeysAt(places['agent 1 in zone a']!)).toEqual(['global', 'zone:zone-a', 'agent:agt_1']);
    expect(scopeKeysAt(places['zone a, no agent yet']!)).toEqual(['global', 'zone:zone-a']);
  });
});

describe('drainFor: what each agent is told', () => {
  const agents = {
    'agent 1 in zone a': { id: 'agt_1', zone: 'zone-a' },
    'agent 3 in zone b': { id: 'agt_3', zone: 'zone-b' },
  };
  const cases: [string, Maintenance[], Record<keyof typeof agents, string | null>][] = [
    ['none', [], { 'agent 1 in zone a': null, 'agent 3 in zone b': null }],
    ['global', [global], { 'agent 1 in zone a': 'global', 'agent 3 in zone b': 'global' }],
    ['zone a', [zoneA], { 'agent 1 in zone a': 'zone a', 'agent 3 in zone b': null }],
    ['agent 1', [agent1], { 'agent 1 in zone a': 'agent 1', 'agent 3 in zone b': null }],
    ['all three', [global, zoneA, agent1], { 'agent 1 in zone a': 'agent 1', 'agent 3 in zone b': 'global' }],
  ];
  for (const [name, active, expected] of cases) {
    for (const [which, agent] of Object.entries(agents)) {
      const want = expected[which as keyof typeof agents];
      it(`${name}: ${which} → ${want ?? 'off'}`, () => {
        expect(drainFor(active, agent)).toEqual(
          want === null ? { enabled: false, message: '' } : { enabled: true, message: want },
        );
        expect(agentTakesBackups(active, agent)).toBe(want === null);
      });
    }
  }
});

describe('agentMaintenance: the API scope or the local drain', () => {
  const cases: [
    string,
    { enabled: boolean; message: string } | undefined,
    { draining: boolean; message: string | null },
    object,
  ][] = [
    [
      'neither',
      undefined,
      { draining: false, message: null },
      { enabled: false, message: DEFAULT_MAINTENANCE_MESSAGE, source: 'api' },
    ],
    [
      'api on',
      { enabled: true, message: 'api' },
      { draining: false, message: null },
      { enabled: true, message: 'api', source: 'api' },
    ],
    ['local only', undefined, { draining: true, message: 'host' }, { enabled: true, message: 'host', source: 'agent' }],
    [
      'api off, local on',
      { enabled: false, message: 'api' },
      { draining: true, message: 'host' },
      { enabled: true, message: 'host', source: 'agent' },
    ],
    [
      'both on: the api part shows',
      { enabled: true, message: 'api' },
      { draining: true, message: 'host' },
      { enabled: true, message: 'api', source: 'api' },
    ],
    [
      'local without a message',
      undefined,
      { draining: true, message: '' },
      { enabled: true, message: DEFAULT_MAINTENANCE_MESSAGE, source: 'agent' },
    ],
  ];
  for (const [name, api, local, want] of cases) {
    it(name, () => expect(agentMaintenance(api, local)).toEqual(want));
  }
});

describe('admitQueued: what the dispatcher fails instead of placing', () => {
  const task = (kind: QueuedWork['kind'], zone: string, pinnedAgentId: string | null) => ({
    kind,
    zone,
    pinnedAgentId,
    plugin: 'dummy',
  });
  it('fails covered backups with the narrowest message and keeps everything else', () => {
    const pinned = task('backup', 'zone-a', 'agt_1');
    const unpinned = task('backup', 'zone-a', null);
    const elsewhere = task('backup', 'zone-b', null);
    const restore = task('restore', 'zone-a', 'agt_1');
    expect(admitQueued([pinned, unpinned, elsewhere, restore], only(agent1))).toEqual({
      admitted: [unpinned, elsewhere, restore],
      refused: [{ task: pinned, message: 'agent 1' }],
      waiting: [],
    });
    expect(admitQueued([pinned, unpinned, elsewhere, restore], only(zoneA, agent1))).toEqual({
      admitted: [elsewhere, restore],
      refused: [
        { task: pinned, message: 'agent 1' },
        { task: unpinned, message: 'zone a' },
      ],
      waiting: [],
    });
    expect(admitQueued([pinned, restore], only())).toEqual({ admitted: [pinned, restore], refused: [], waiting: [] });
  });

  it('keeps covered deletes, prunes and schedule changes waiting (never failed); uncovered ones go on', () => {
    const held = (['delete-backup', 'prune', 'configure-schedule', 'deconfigure-schedule'] as const).map((k) =>
      task(k, 'zone-a', k === 'delete-backup' ? 'agt_1' : null),
    );
    const elsewhere = task('delete-backup', 'zone-b', 'agt_2');
    const sync = task('sync', 'zone-a', null);
    expect(admitQueued([...held, elsewhere, sync], only(zoneA))).toEqual({
      admitted: [elsewhere, sync],
      refused: [],
      waiting: held,
    });
    // An agent scope holds only what is pinned to that agent; the rest is placed elsewhere.
    expect(admitQueued(held, only(agent1))).toEqual({
      admitted: held.slice(1),
      refused: [],
      waiting: held.slice(0, 1),
    });
    expect(waits('backup')).toBe(false);
    expect(waitingPlaces([zoneA, agent1])).toEqual({
      kinds: ['delete-backup', 'prune', 'configure-schedule', 'deconfigure-schedule'],
      global: false,
      zones: ['zone-a'],
      agentIds: ['agt_1'],
    });
    expect(waitingPlaces([{ scope: { kind: 'global' }, message: 'm' }]).global).toBe(true);
    expect(TASK_KINDS.filter(waits)).toEqual(['delete-backup', 'configure-schedule', 'deconfigure-schedule', 'prune']);
  });
});
