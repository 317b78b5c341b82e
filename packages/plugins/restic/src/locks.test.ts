import { describe, expect, it } from 'vitest';
import {
  localDirectory,
  lockState,
  parseLock,
  PID_REUSE_SLACK_MS,
  planLocks,
  processStartMs,
  RESTIC_STALE_MS,
  type LockState,
} from './locks.js';

const lock = { time: '2026-12-05T02:20:17.817386401Z', hostname: 'vm', pid: 7495 };
const taken = Date.parse(lock.time);
const now = taken + 120_000;

describe('restic locks left behind', () => {
  it.each([
    ['its restic runs: started before it took the lock', 'vm', taken - 800, now, 'live'],
    ['a later process has its PID', 'vm', taken + PID_REUSE_SLACK_MS + 1, now, 'reused'],
    [
      'the PID’s process looks started just after it (a small clock step)',
      'vm',
      taken + PID_REUSE_SLACK_MS,
      now,
      'live',
    ],
    ['no process has its PID', 'vm', undefined, now, 'gone'],
    ['another host took it (its PID means nothing here)', 'other', taken + 60_000, now, 'foreign'],
    ['older than restic’s 30 minutes, however alive', 'vm', taken - 800, taken + RESTIC_STALE_MS + 1, 'expired'],
    ['another host’s, older than 30 minutes', 'other', undefined, taken + RESTIC_STALE_MS + 1, 'expired'],
  ] as const)('%s', (_why, host, startedMs, nowMs, state) => {
    expect(lockState(lock, host, startedMs, nowMs)).toBe(state);
  });

  const found = (...states: LockState[]) => states.map((state, i) => ({ id: `l${i}`, state }));
  it.each([
    ['nothing stale: wait', found('live', 'foreign'), true, 'wait'],
    [
      'a local repository: remove the stale ones only',
      found('live', 'gone', 'reused', 'expired', 'foreign'),
      true,
      'remove',
    ],
    ['elsewhere, no stranger’s PID: restic unlock', found('live', 'gone', 'expired', 'foreign'), false, 'unlock'],
    ['elsewhere, a stranger has a lock’s PID: wait, never signal it', found('gone', 'reused'), false, 'wait'],
    ['no locks at all', found(), false, 'wait'],
  ] as const)('%s', (_why, locks, local, what) => {
    const plan = planLocks(locks, local);
    expect(plan.do).toBe(what);
    if (plan.do === 'remove') expect(plan.ids).toEqual(['l1', 'l2', 'l3']);
  });

  it('reads only what restic writes in a lock', () => {
    expect(parseLock({ ...lock, exclusive: false, username: 'root' })).toEqual(lock);
    for (const bad of [
      null,
      'x',
      { ...lock, time: 'yesterday' },
      { ...lock, pid: 0 },
      { ...lock, pid: '7' },
      { time: lock.time, pid: 1 },
    ])
      expect(parseLock(bad)).toBeUndefined();
  });

  it('reads when a process started, and nothing for one that is gone', () => {
    const started = processStartMs(process.pid);
    if (process.platform !== 'linux') return expect(started).toBeUndefined();
    expect(started).toBeLessThanOrEqual(Date.now() + 1000);
    expect(started).toBeGreaterThan(Date.now() - process.uptime() * 1000 - 2000);
    expect(processStartMs(2 ** 22 + 1)).toBeUndefined();
  });

  it('knows a local repository from a remote one', () => {
    expect(localDirectory('/srv/repo')).toBe('/srv/repo');
    expect(localDirectory('local:/srv/repo')).toBe('/srv/repo');
    for (const r of ['rest:https://h/repo', 'sftp:u@h:/srv/repo', 'local:relative'])
      expect(localDirectory(r)).toBeUndefined();
  });
});
