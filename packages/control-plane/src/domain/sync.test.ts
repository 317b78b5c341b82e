import { describe, expect, it } from 'vitest';
import {
  driftReport,
  holdsVanishing,
  intervalStart,
  noRepositoryNote,
  noRepositoryYet,
  pagedListing,
  pagesComplete,
  parseListing,
  planSync,
  readSyncPage,
  storedPagePoints,
  SYNC_LIMITS,
  type ListedPoint,
  type SyncedRecord,
  type SyncInstance,
} from './sync.js';

const T = Date.parse('2026-01-01T00:00:00Z');

describe('parseListing', () => {
  const good = { externalId: 'p1', createdAt: '2026-01-01T00:00:00Z', sizeBytes: 5 };
  it('reads well-formed points, optional fields defaulted', () => {
    const out = parseListing(
      JSON.stringify([
        good,
        {
          ...good,
          externalId: 'p2',
          locator: { instanceId: 'ins_1' },
          mode: 'INCREMENT',
          parentExternalId: 'p1',
          expiresAt: '2026-02-01T00:00:00Z',
        },
      ]),
    );
    expect(out).toEqual({
      ok: true,
      points: [
        { ...good, createdAt: T, locator: undefined, mode: null, parentExternalId: null, expiresAt: null },
        {
          externalId: 'p2',
          createdAt: T,
          sizeBytes: 5,
          locator: { instanceId: 'ins_1' },
          mode: 'INCREMENT',
          parentExternalId: 'p1',
          expiresAt: Date.parse('2026-02-01T00:00:00Z'),
        },
      ],
    });
    expect(parseListing('[]')).toEqual({ ok: true, points: [] });
  });

  const bad: [string, string | null, RegExp][] = [
    ['no output', null, /not an array/],
    ['not JSON (kept as a string by the store)', JSON.stringify({ unparsed: '[{' }), /not JSON/],
    ['not JSON at all', '[{', /not JSON/],
    ['an object', '{"a":1}', /not an array/],
    [
      'the truncation note of an oversize listing',
      JSON.stringify({ cairnTruncated: true, field: 'task output', reason: 'task output was 70000 bytes' }),
      /too large.*70000 bytes/,
    ],
    ['a point that is no object', '[1]', /point 0: +is not an object/],
    ['an empty externalId', JSON.stringify([{ ...good, externalId: '' }]), /point 0: externalId/],
    ['a numeric externalId', JSON.stringify([good, { ...good, externalId: 7 }]), /point 1: externalId/],
    [
      'an externalId over the column',
      JSON.stringify([{ ...good, externalId: 'x'.repeat(SYNC_LIMITS.externalIdChars + 1) }]),
      /externalId must be .* at most 255/,
    ],
    ['an unparseable createdAt', JSON.stringify([{ ...good, createdAt: 'yesterday' }]), /createdAt/],
    ['a negative size', JSON.stringify([{ ...good, sizeBytes: -1 }]), /sizeBytes/],
    ['a fractional size', JSON.stringify([{ ...good, sizeBytes: 1.5 }]), /sizeBytes/],
    ['a size beyond 2^53', JSON.stringify([{ ...good, sizeBytes: 2 ** 60 }]), /sizeBytes/],
    ['a size as a string', JSON.stringify([{ ...good, sizeBytes: '5' }]), /sizeBytes/],
    ['an unknown mode', JSON.stringify([{ ...good, mode: 'DIFF' }]), /mode/],
    ['a numeric parent', JSON.stringify([{ ...good, parentExternalId: 3 }]), /parentExternalId/],
    ['a bad expiry', JSON.stringify([{ ...good, expiresAt: 'soon' }]), /expiresAt/],
  ];
  it.each(bad)('refuses %s', (_name, output, reason) => {
    const out = parseListing(output);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.reason).toMatch(reason);
  });
});

describe('planSync', () => {
  const point = (externalId: string, locator?: unknown, createdAt = T): ListedPoint => ({
    externalId,
    createdAt,
    sizeBytes: 1,
    locator,
    mode: null,
    parentExternalId: null,
    expiresAt: null,
  });
  const record = (id: string, externalId: string, extra: Partial<SyncedRecord> = {}): SyncedRecord => ({
    id,
    externalId,
    createdAt: T,
    vanishedAt: null,
    deleteAsked: false,
    ...extra,
  });
  // The instances bound to the connection synced; `ins_a`'s locator is `{vm: 'a', dc: 1}`.
  const instances: SyncInstance[] = [
    { id: 'ins_a', busy: false },
    { id: 'ins_b', busy: true },
  ];
  const plan = (points: ListedPoint[], records: SyncedRecord[] = [], vanishing = { share: 0.5, confirmed: false }) =>
    planSync({ points, records, instances, listedAt: T + 1000, vanishing });

  it('matches listed points to records by external id', () => {
    expect(plan([point('p1')], [record('bkp_1', 'p1')])).toMatchObject({ known: ['bkp_1'], adopt: [], vanished: [] });
  });

  it('adopts a point into the instance its locator.instanceId names', () => {
    const out = plan([point('p1', { instanceId: 'ins_a', paths: ['/x'] })]);
    expect(out.adopt.map((a) => [a.point.externalId, a.instanceId])).toEqual([['p1', 'ins_a']]);
  });

  it.each([
    ['an instance of another connection (or none known)', { instanceId: 'ins_elsewhere' }],
    ["a locator equal to an instance's, naming no instance", { dc: 1, vm: 'a' }],
    ['an instance id that is not a string', { instanceId: 7 }],
    ['an instance id of another case', { instanceId: 'INS_A' }],
    ['a locator that is not an object', 'ins_a'],
    ['no locator', undefined],
  ])('leaves a point naming %s unadopted (orphaned)', (_, locator) => {
    const out = plan([point('p1', locator)]);
    expect(out.orphaned).toEqual(['p1']);
    expect(out.adopt).toEqual([]);
  });

  it('defers a point of an instance whose backup still runs (it may be that backup)', () => {
    expect(plan([point('p1', { instanceId: 'ins_b' })])).toMatchObject({ deferred: ['p1'], adopt: [] });
  });

  it('defers a point deleted since the listing was asked for (its record is gone, the point too)', () => {
    const out = planSync({
      points: [point('p1', { instanceId: 'ins_a' }), point('p2', { instanceId: 'ins_a' })],
      records: [],
      instances,
      listedAt: T + 1000,
      deletedSinceListed: new Set(['p1']),
      vanishing: { share: 0.5, confirmed: false },
    });
    expect(out).toMatchObject({ deferred: ['p1'], orphaned: [] });
    expect(out.adopt.map((a) => a.point.externalId)).toEqual(['p2']);
  });

  it('adopts oldest first so a parent is recorded before its child, and a twice-listed point once', () => {
    const out = plan([
      point('child', { instanceId: 'ins_a' }, T + 2),
      point('base', { instanceId: 'ins_a' }, T + 1),
      point('child', { instanceId: 'ins_a' }, T + 2),
    ]);
    expect(out.adopt.map((a) => a.point.externalId)).toEqual(['base', 'child']);
  });

  it('marks unlisted records vanished (new marks apart), removes those with a delete asked, spares the newest', () => {
    const out = plan(
      [point('back')],
      [
        record('bkp_gone', 'gone'),
        record('bkp_marked', 'marked', { vanishedAt: T }),
        record('bkp_deleted', 'deleted', { deleteAsked: true }),
        record('bkp_new', 'new', { createdAt: T + 1000 }),
        record('bkp_back', 'back', { vanishedAt: T }),
      ],
    );
    expect(out).toMatchObject({
      known: ['bkp_back'],
      reappeared: ['bkp_back'],
      vanished: ['bkp_gone', 'bkp_marked'],
      newlyVanished: ['bkp_gone'],
      removed: ['bkp_deleted'],
      held: null,
    });
  });

  describe('a sync that would mark too many vanished at once', () => {
    // Ten live records, one of them listed; two more already marked or on their way out.
    const records = [
      ...Array.from({ length: 10 }, (_, i) => record(`bkp_${i}`, `p${i}`)),
      record('bkp_marked', 'marked', { vanishedAt: T }),
      record('bkp_deleted', 'deleted', { deleteAsked: true }),
    ];
    const gone = Array.from({ length: 9 }, (_, i) => `bkp_${i + 1}`);

    it('marks none of them, names them and the live count, and applies the rest', () => {
      const out = plan([point('p0'), point('stranger'), point('new', { instanceId: 'ins_a' })], records);
      expect(out).toMatchObject({
        known: ['bkp_0'],
        vanished: ['bkp_marked'],
        newlyVanished: [],
        removed: ['bkp_deleted'],
        held: { ids: gone, of: 10 },
      });
      expect(out.adopt.map((a) => a.point.externalId)).toEqual(['new']);
      expect(out.orphaned).toEqual(['stranger']);
    });

    it('marks them all once an operator confirmed this sync', () => {
      const out = plan([point('p0')], records, { share: 0.5, confirmed: true });
      expect(out).toMatchObject({ vanished: [...gone, 'bkp_marked'], newlyVanished: gone, held: null });
    });

    it('marks them all under a share of 1, and counts no record that was marked or has a delete asked', () => {
      expect(plan([point('p0')], records, { share: 1, confirmed: false }).held).toBeNull();
      // 9 of 10 is more than 0.8 of them; 9 of 12 would not be.
      expect(plan([point('p0')], records, { share: 0.8, confirmed: false }).held).toMatchObject({ of: 10 });
    });
  });
});

describe('holdsVanishing', () => {
  it.each([
    [10, 9, 0.5, true],
    [10, 6, 0.5, true],
    [10, 5, 0.5, false],
    [10, 10, 1, false],
    [2, 2, 0.5, true],
    // A single point never holds a sync, whatever the share.
    [1, 1, 0.5, false],
    [2, 1, 0.1, false],
    [10, 0, 0.01, false],
  ])('%i live, %i vanishing, share %d: held %s', (live, vanishing, share, held) => {
    expect(holdsVanishing(live, vanishing, share)).toBe(held);
  });
});

describe('driftReport', () => {
  it('counts everything and caps each list', () => {
    const many = Array.from({ length: SYNC_LIMITS.reportIds + 5 }, (_, i) => `p${i}`);
    const r = driftReport({
      known: ['a', 'b'],
      adopted: ['c'],
      vanished: [],
      expired: [],
      orphaned: many,
      removed: [],
      deferred: [],
      held: null,
    });
    expect(r.counts).toEqual({
      known: 2,
      adopted: 1,
      vanished: 0,
      expired: 0,
      orphaned: SYNC_LIMITS.reportIds + 5,
      removed: 0,
      deferred: 0,
    });
    expect(r.orphaned).toHaveLength(SYNC_LIMITS.reportIds);
    expect(r.truncated).toBe(true);
    expect(r.held).toBeNull();
    expect(driftReport({ ...r, known: [], deferred: [], orphaned: [], held: null }).truncated).toBe(false);
  });

  it('tells a hold: how many of how many, since when, how to confirm, the ids capped', () => {
    const many = Array.from({ length: SYNC_LIMITS.reportIds + 1 }, (_, i) => `bkp_${i}`);
    const lists = { known: [], adopted: [], vanished: [], expired: [], orphaned: [], removed: [], deferred: [] };
    const confirm = 'POST /v1/zones/z/providers/prv_1/sync?confirm=true';
    const r = driftReport({ ...lists, held: { ids: many, of: many.length + 3, since: T, confirm } });
    expect(r.held).toEqual({ vanishing: many.length, of: many.length + 3, since: T, confirm, ids: many.slice(0, -1) });
    expect(r.counts.vanished).toBe(0);
    expect(r.truncated).toBe(true);
  });
});

describe('noRepositoryYet', () => {
  it('reads REPOSITORY_NOT_FOUND as "none yet" only through a connection that never reached a repository', () => {
    const never = { identityRecorded: false, recorded: false };
    expect(noRepositoryYet('REPOSITORY_NOT_FOUND', never)).toBe(true);
    // Initialised (or opened) once: the repository is missing now, an unmounted disk perhaps.
    expect(noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: true, recorded: false })).toBe(false);
    // Restore points were made there (the identity cleared since, or from before identities).
    expect(noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: false, recorded: true })).toBe(false);
    expect(noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: true, recorded: true })).toBe(false);
    // Any other failure stays one.
    for (const code of ['REPOSITORY_CHANGED', 'WRONG_PASSWORD', 'PLUGIN_CRASHED', 'repository_not_found'])
      expect(noRepositoryYet(code, never)).toBe(false);
  });

  it('the note names the request that creates the repository and quotes the plugin, cut', () => {
    const note = noRepositoryNote('zone-a', 'prv_1', 'restic: there is no repository at /srv/r');
    const initialise = 'POST /v1/zones/zone-a/providers/prv_1/preflight {"initialise": true}';
    expect(note.initialise).toBe(initialise);
    expect(note.message).toMatch(/^no repository yet: /);
    expect(note.message).toContain(`Create it with ${initialise}`);
    expect(note.message).toContain('mount it');
    expect(note.message).toMatch(/The plugin said: restic: there is no repository at \/srv\/r$/);
    const long = noRepositoryNote('zone-a', 'prv_1', 'x'.repeat(5000)).message;
    expect(long).toMatch(/x{500}…$/);
    expect(long).not.toMatch(/x{501}/);
  });

  it('a drift report says so, and none says nothing', () => {
    const lists = { known: [], adopted: [], vanished: [], expired: [], orphaned: [], removed: [], deferred: [] };
    const note = noRepositoryNote('z', 'prv_1', 'gone');
    expect(driftReport({ ...lists, held: null, noRepository: note }).noRepository).toEqual(note);
    expect(driftReport({ ...lists, held: null }).noRepository).toBeNull();
  });
});

describe('intervalStart', () => {
  it('starts intervals at multiples of their length', () => {
    expect(intervalStart(T + 299_999, 300_000)).toBe(T);
    expect(intervalStart(T + 300_000, 300_000)).toBe(T + 300_000);
  });
});

describe('paged listings', () => {
  const point = (id: string) => ({ externalId: id, createdAt: '2026-01-01T00:00:00Z', sizeBytes: 5 });

  it('reads the marker of a paged result, and nothing else as one', () => {
    expect(pagedListing('{"cairnPages":3,"points":700}')).toEqual({ pages: 3, points: 700 });
    for (const other of [
      null,
      '[]',
      '{"cairnPages":0,"points":1}',
      '{"cairnPages":1.5,"points":1}',
      '{"cairnPages":2}',
      '{"cairnPages":',
    ])
      expect(pagedListing(other)).toBeUndefined();
  });

  it('reads a page: its number, its points checked as a listing is, numbered on the page', () => {
    expect(readSyncPage(JSON.stringify({ page: 4, points: [point('a'), point('b')] }))).toEqual({
      ok: true,
      page: 4,
      points: 2,
      body: JSON.stringify([point('a'), point('b')]),
      bad: null,
    });
    expect(readSyncPage(JSON.stringify({ page: 0, points: [point('a'), { externalId: '' }] }))).toMatchObject({
      ok: true,
      bad: 'page 0: point 1: externalId must be a non-empty string of at most 255 characters',
    });
    expect(readSyncPage('{"page":0,"points":{}}')).toMatchObject({ ok: true, bad: 'page 0: points is not an array' });
    for (const bad of [null, 'nope', '[]', '{"page":-1,"points":[]}', '{"page":"0","points":[]}'])
      expect(readSyncPage(bad)).toMatchObject({ ok: false });
  });

  it('a listing is complete only with pages 0..n-1 and the points the result counts', () => {
    const paged = { pages: 3, points: 700 };
    expect(pagesComplete(paged, { pages: 3, lastPage: 2, points: 700, bad: null })).toBeUndefined();
    expect(pagesComplete(paged, { pages: 0, lastPage: -1, points: 0, bad: null })).toMatch(/0 of its 3 pages/);
    expect(pagesComplete(paged, { pages: 3, lastPage: 3, points: 700, bad: null })).toMatch(/3 of its 3 pages/);
    expect(pagesComplete(paged, { pages: 3, lastPage: 2, points: 699, bad: null })).toMatch(/hold 699/);
    expect(pagesComplete(paged, { pages: 3, lastPage: 2, points: 700, bad: 'page 2: x' })).toBe('page 2: x');
  });

  it('numbers the points of a stored page from where the listing stands', () => {
    expect(storedPagePoints(JSON.stringify([point('a')]), 0)).toMatchObject({
      ok: true,
      points: [{ externalId: 'a' }],
    });
    expect(storedPagePoints(JSON.stringify([point('a'), {}]), 500)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^point 501: externalId/) as string,
    });
    expect(storedPagePoints('{}', 0)).toEqual({ ok: false, reason: 'a stored page is not an array' });
  });

  it('a listing cut off before its end marks nothing vanished: it never reaches planSync', () => {
    // The whole rule lives in pagesComplete: any listing short of its pages fails the task, and a
    // failed sync changes nothing (see lifecycle/sync.ts). Shown here for every cut point.
    const paged = { pages: 5, points: 5 };
    for (let got = 0; got < 5; got++)
      expect(pagesComplete(paged, { pages: got, lastPage: got - 1, points: got, bad: null })).toBeDefined();
  });
});
