import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  abandonOutdated,
  forgottenRuns,
  managedBySp,
  memberError,
  memberRefusal,
  moved,
  priorityAllowed,
  retryTargets,
  runFinished,
  runProgress,
  setsOf,
  startRun,
  toStart,
  type Execution,
  type MemberOutcome,
  type MemberProgress,
  type RunAge,
  type RunMember,
} from './job-run.js';

/** `run('a:U b:O c:E')`: members in that order with sets UPDATED, ONGOING, ERROR (D = OUTDATED). */
function run(spec: string): RunMember[] {
  const sets = { D: 'OUTDATED', O: 'ONGOING', U: 'UPDATED', E: 'ERROR' } as const;
  return spec
    .split(' ')
    .filter(Boolean)
    .map((s, position) => {
      const [id, code] = s.split(':') as [string, keyof typeof sets];
      return { instanceId: id, position, set: sets[code] };
    });
}

describe('toStart', () => {
  const cases: [string, Execution, string, string[]][] = [
    ['sequential: the first outdated', 'SEQUENTIAL', 'a:D b:D c:D', ['a']],
    ['sequential: nothing while one is ongoing', 'SEQUENTIAL', 'a:U b:O c:D', []],
    ['sequential: next after an error', 'SEQUENTIAL', 'a:E b:D c:D', ['b']],
    ['sequential: the job order, not the set order', 'SEQUENTIAL', 'a:U b:U c:D d:D', ['c']],
    ['sequential: done', 'SEQUENTIAL', 'a:U b:E', []],
    ['parallel: every outdated', 'PARALLEL', 'a:D b:O c:D', ['a', 'c']],
    ['parallel: done', 'PARALLEL', 'a:U b:E', []],
    ['empty job', 'SEQUENTIAL', '', []],
  ];
  it.each(cases)('%s', (_name, execution, spec, expected) => {
    expect(toStart(execution, run(spec))).toEqual(expected);
  });
});

describe('moved', () => {
  it('OUTDATED → ONGOING → UPDATED or ERROR', () => {
    expect(setsOf(moved(run('a:D b:D'), 'a', 'ONGOING'))).toEqual({
      outdated: ['b'],
      ongoing: ['a'],
      updated: [],
      error: [],
    });
    const outcomes: [MemberOutcome, string][] = [
      ['succeeded', 'updated'],
      ['failed', 'error'],
      ['cancelled', 'error'],
      ['lost', 'error'],
    ];
    for (const [outcome, set] of outcomes) {
      const sets = setsOf(moved(run('a:O b:D'), 'a', outcome)) as Record<string, string[]>;
      expect(sets[set]).toEqual(['a']);
    }
  });

  it('refuses a move the sets do not allow', () => {
    expect(() => moved(run('a:U'), 'a', 'ONGOING')).toThrow(/a is UPDATED; it cannot become ONGOING/);
    expect(() => moved(run('a:D'), 'a', 'succeeded')).toThrow(/a is OUTDATED; it cannot become UPDATED/);
    expect(() => moved(run('a:E'), 'a', 'failed')).toThrow(/a is ERROR/);
  });

  it('a refused instance goes from OUTDATED to ERROR without a task, and only from OUTDATED', () => {
    expect(setsOf(moved(run('a:D b:D'), 'b', 'refused')).error).toEqual(['b']);
    expect(() => moved(run('a:O'), 'a', 'refused')).toThrow(/a is ONGOING; it cannot become ERROR/);
  });

  it('an ended task leaves its error on the instance, or its end state when it gave none; a success leaves none', () => {
    expect(memberError('succeeded', null)).toBeNull();
    expect(memberError('failed', { code: 'X', message: 'x' })).toEqual({ code: 'X', message: 'x' });
    expect(memberError('lost', null)).toEqual({ code: 'LOST', message: 'the backup task ended lost' });
    expect(memberError('cancelled', null)).toEqual({ code: 'CANCELLED', message: 'the backup task ended cancelled' });
  });

  it('leaves an instance not in the run alone', () => {
    expect(moved(run('a:D'), 'zz', 'ONGOING')).toEqual(run('a:D'));
  });
});

describe('sets, ends and retries', () => {
  it('startRun makes every instance outdated in the job order; a duplicate is a bug', () => {
    expect(setsOf(startRun(['c', 'a', 'b'])).outdated).toEqual(['c', 'a', 'b']);
    expect(() => startRun(['a', 'b', 'a'])).toThrow(/twice/);
  });

  it('abandonOutdated fails what did not start and leaves the ongoing one to its task', () => {
    expect(setsOf(abandonOutdated(run('a:U b:O c:D d:D')))).toEqual({
      outdated: [],
      ongoing: ['b'],
      updated: ['a'],
      error: ['c', 'd'],
    });
  });

  it('abandonOutdated with `only` fails just those of them that did not start', () => {
    expect(setsOf(abandonOutdated(run('a:D b:O c:D d:D'), new Set(['b', 'c'])))).toEqual({
      outdated: ['a', 'd'],
      ongoing: ['b'],
      updated: [],
      error: ['c'],
    });
  });

  it('a run is finished when nothing is outdated or ongoing', () => {
    expect(runFinished(run('a:U b:E'))).toBe(true);
    expect(runFinished(run('a:U b:O'))).toBe(false);
    expect(runFinished(run('a:D'))).toBe(false);
    expect(runFinished([])).toBe(true);
  });

  it('a retry takes exactly the error set, in the job order', () => {
    expect(retryTargets(run('a:E b:U c:E d:U'))).toEqual(['a', 'c']);
  });
});

describe('priorityAllowed', () => {
  const cases: [number, boolean, boolean][] = [
    [0, false, true],
    [49, false, true],
    [50, false, false],
    [99, false, false],
    [50, true, true],
    [99, true, true],
    [0, true, true],
    [100, true, false],
    [-1, true, false],
    [7.5, false, false],
  ];
  it.each(cases)('priority %d, sp-admin %s → %s', (priority, sp, expected) => {
    expect(priorityAllowed(priority, sp)).toBe(expected);
  });
});

describe('memberRefusal and managedBySp', () => {
  const offering = (allowAdhoc: number, allowUserSchedules: number) => ({
    name: 'gold',
    allowAdhoc,
    allowUserSchedules,
  });
  it("a tenant's job may back up an instance whose offering allows ad-hoc backups or user schedules", () => {
    expect(memberRefusal(offering(1, 0), false)).toBeNull();
    expect(memberRefusal(offering(0, 1), false)).toBeNull();
    expect(memberRefusal(offering(1, 1), false)).toBeNull();
  });
  it('an offering reserved for the SLA refuses a tenant job, naming the offering, but not a job the provider manages', () => {
    expect(memberRefusal(offering(0, 0), false)).toMatch(
      /^offering gold allows neither ad-hoc backups nor user schedules/,
    );
    expect(memberRefusal(offering(0, 0), true)).toBeNull();
  });
  it('the provider manages the jobs in its band, 50-99, and only those', () => {
    expect([0, 49, 50, 99].map(managedBySp)).toEqual([false, false, true, true]);
  });
});

describe('runProgress', () => {
  it('counts what was done of what was planned: backed up whole, ongoing and ended ones by their percent, outdated ones as nothing', () => {
    const p = runProgress(
      [
        { set: 'UPDATED', percent: 100, bytesDone: 100, bytesTotal: 100 },
        { set: 'ONGOING', percent: 50, bytesDone: 25, bytesTotal: 50 },
        { set: 'OUTDATED' },
        { set: 'ERROR', percent: 10, bytesDone: 5, bytesTotal: 80 },
      ],
      0,
      60_000,
    );
    // (100 + 50 + 0 + 10) / 4 = 40 % in 60 s: 60 % left at that rate is 90 s.
    expect(p).toEqual({ percent: 40, bytesDone: 130, bytesTotal: 230, etaSeconds: 90 });
  });

  it('after a cancel mid-backup reads what was done (185 MB of 406 MB), not 100 %', () => {
    const MB = 1_000_000;
    const cancelled = { set: 'ERROR', percent: 46, bytesDone: 185 * MB, bytesTotal: 406 * MB } as const;
    expect(runProgress([cancelled], 0, 60_000)).toEqual({
      percent: 46,
      bytesDone: 185 * MB,
      bytesTotal: 406 * MB,
      etaSeconds: 0,
    });
    // The instance never started (ERROR without a task) is planned and not done.
    expect(runProgress([cancelled, { set: 'ERROR' }], 0, 60_000)).toEqual({
      percent: 23,
      bytesDone: 185 * MB,
      bytesTotal: 406 * MB,
      etaSeconds: 0,
    });
    expect(runProgress([{ set: 'UPDATED' }, { set: 'ERROR' }, { set: 'ERROR' }], 0, 1000).percent).toBe(33.3);
  });

  it('has no ETA before anything moved, and 0 once done or ended', () => {
    expect(runProgress([{ set: 'OUTDATED' }], 0, 10_000).etaSeconds).toBeNull();
    expect(runProgress([{ set: 'ONGOING', percent: 0 }], 0, 10_000).etaSeconds).toBeNull();
    expect(runProgress([{ set: 'UPDATED' }], 0, 0)).toMatchObject({ percent: 100, etaSeconds: 0 });
    expect(runProgress([{ set: 'ERROR' }], 0, 10_000)).toMatchObject({ percent: 0, etaSeconds: 0 });
    expect(runProgress([], 0, 0)).toMatchObject({ percent: 100, etaSeconds: 0 });
  });

  it('reads 100 % only when every instance was backed up or its ended backup reported all of it', () => {
    const member = fc.oneof(
      fc.constant<MemberProgress>({ set: 'OUTDATED' }),
      fc.constant<MemberProgress>({ set: 'UPDATED', percent: 100 }),
      fc.record({
        set: fc.constantFrom('ONGOING' as const, 'ERROR' as const),
        percent: fc.integer({ min: 0, max: 100 }),
      }),
      fc.constant<MemberProgress>({ set: 'ERROR' }),
    );
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 500 }), (members) => {
        const { percent } = runProgress(members, 0, 1000);
        const whole = members.every((m) => m.set === 'UPDATED' || m.percent === 100);
        expect(percent >= 0 && percent <= 100).toBe(true);
        if (percent === 100) expect(whole).toBe(true);
        if (whole) expect(percent).toBe(100);
      }),
    );
    // 19 instances backed up and one at 99 %: 99.95 % is not 100.
    const nearly = [
      ...Array.from({ length: 19 }, () => ({ set: 'UPDATED' as const })),
      { set: 'ERROR' as const, percent: 99 },
    ];
    expect(runProgress(nearly, 0, 1000).percent).toBe(99.9);
  });

  it('ignores a nonsense percent', () => {
    expect(runProgress([{ set: 'ONGOING', percent: Number.NaN }], 0, 1000).percent).toBe(0);
    expect(runProgress([{ set: 'ONGOING', percent: 250 }], 0, 1000).percent).toBe(100);
  });
});

describe('a run driven to its end (property)', () => {
  const outcome = fc.constantFrom<MemberOutcome>('succeeded', 'failed', 'cancelled', 'lost');
  const scenario = fc.record({
    execution: fc.constantFrom<Execution>('SEQUENTIAL', 'PARALLEL'),
    size: fc.integer({ min: 0, max: 12 }),
    // Which ongoing backup ends next, and how: indexes are taken modulo the ongoing count.
    ends: fc.array(fc.tuple(fc.nat(), outcome), { maxLength: 40 }),
    cancelAt: fc.option(fc.nat({ max: 30 }), { nil: undefined }),
  });

  it('never two ongoing in SEQUENTIAL, starts in the job order, and ends with every instance UPDATED or ERROR', () => {
    fc.assert(
      fc.property(scenario, ({ execution, size, ends, cancelAt }) => {
        const ids = Array.from({ length: size }, (_, i) => `i${i}`);
        let members = startRun(ids);
        const started: string[] = [];
        const start = () => {
          for (const id of toStart(execution, members)) {
            members = moved(members, id, 'ONGOING');
            started.push(id);
          }
        };
        start();
        let step = 0;
        // Each loop ends one ongoing backup; ends beyond the scripted ones succeed.
        while (!runFinished(members)) {
          const ongoing = setsOf(members).ongoing;
          if (execution === 'SEQUENTIAL') expect(ongoing.length).toBeLessThanOrEqual(1);
          if (step === cancelAt) members = abandonOutdated(members);
          const [pick, how] = ends[step] ?? [0, 'succeeded' as const];
          if (ongoing.length > 0) members = moved(members, ongoing[pick % ongoing.length]!, how);
          start();
          step++;
          expect(step).toBeLessThanOrEqual(size + 1);
        }
        const sets = setsOf(members);
        expect([...sets.updated, ...sets.error].sort()).toEqual([...ids].sort());
        // Nothing starts twice, and SEQUENTIAL starts in the job's order.
        expect(new Set(started).size).toBe(started.length);
        if (execution === 'SEQUENTIAL') expect(started).toEqual(ids.slice(0, started.length));
        // A retry takes exactly what failed.
        expect(retryTargets(members)).toEqual(sets.error);
      }),
    );
  });
});

describe('forgottenRuns', () => {
  const DAY = 24 * 3600 * 1000;
  const now = 1000 * DAY;
  /** Runs r<n-1> (newest) … r0, one a day back from `now`, all finished. */
  const history = (n: number): RunAge[] =>
    Array.from({ length: n }, (_, i) => ({
      id: `r${n - 1 - i}`,
      startedAt: now - i * DAY,
      endedAt: now - i * DAY + 1,
    }));

  it('keeps the newest `keep` runs and forgets the rest', () => {
    expect(forgottenRuns(history(5), new Set(), { keep: 3, maxAgeMs: 100 * DAY }, now)).toEqual(['r1', 'r0']);
    expect(forgottenRuns(history(3), new Set(), { keep: 3, maxAgeMs: 100 * DAY }, now)).toEqual([]);
  });

  it('forgets runs older than the age limit, but never the newest', () => {
    expect(forgottenRuns(history(5), new Set(), { keep: 100, maxAgeMs: 2 * DAY + 1 }, now)).toEqual(['r1', 'r0']);
    const old = history(3).map((r) => ({ ...r, startedAt: r.startedAt - 50 * DAY }));
    expect(forgottenRuns(old, new Set(), { keep: 100, maxAgeMs: DAY }, now)).toEqual(['r1', 'r0']);
  });

  it('never forgets a run still going, nor the latest run of an instance', () => {
    const runs = history(6);
    runs[4] = { ...runs[4]!, endedAt: null };
    expect(forgottenRuns(runs, new Set(['r0']), { keep: 1, maxAgeMs: DAY }, now)).toEqual(['r4', 'r3', 'r2']);
  });

  it('holds for any history: the newest, running and latest runs stay; the rest go past keep or age (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ age: fc.nat(200), running: fc.boolean(), latest: fc.boolean() }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 100 }),
        (spec, keep, maxAgeDays) => {
          const runs = spec
            .sort((a, b) => a.age - b.age)
            .map((s, i) => ({ id: `r${i}`, startedAt: now - s.age * DAY, endedAt: s.running ? null : now }));
          const latest = new Set(spec.flatMap((s, i) => (s.latest ? [`r${i}`] : [])));
          const gone = new Set(forgottenRuns(runs, latest, { keep, maxAgeMs: maxAgeDays * DAY }, now));
          runs.forEach((r, i) => {
            const kept = i === 0 || r.endedAt === null || latest.has(r.id);
            if (kept) expect(gone.has(r.id)).toBe(false);
            else expect(gone.has(r.id)).toBe(i >= keep || r.startedAt < now - maxAgeDays * DAY);
          });
        },
      ),
    );
  });
});
