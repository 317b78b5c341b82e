import { describe, expect, it } from 'vitest';
import { backupsToDelete, type RetainedBackup } from './retention.js';

/** `chain('F a, I b<a, I c<b')`: a full `a` at t=1, then `b` on `a` at t=2, ... */
function chain(spec: string): RetainedBackup[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s, i) => {
      const m = /^(F|I) (\w+)(?:<(\w+))?$/.exec(s);
      if (!m) throw new Error(`bad spec ${s}`);
      return { id: m[2]!, createdAt: i + 1, parentId: m[3] ?? null, mode: m[1] === 'F' ? 'FULL' : 'INCREMENT' };
    });
}

describe('backupsToDelete', () => {
  const cases: [string, string, number | null, boolean, string[]][] = [
    ['nothing to keep track of', '', 3, false, []],
    ['fewer than keepLast', 'F a, F b', 3, false, []],
    ['exactly keepLast', 'F a, F b, F c', 3, false, []],
    ['fulls beyond keepLast, newest first', 'F a, F b, F c, F d, F e', 3, false, ['b', 'a']],
    ['keepLast 1', 'F a, F b, F c', 1, false, ['b', 'a']],
    ['no keepLast: keep all', 'F a, F b, F c', null, false, []],
    ['keepLast 0 is no retention, not delete-all', 'F a, F b', 0, false, []],
    ['the base of a kept increment survives', 'F a, I b<a, I c<b, I d<c', 2, false, []],
    ['the whole chain of a kept increment survives', 'F a, I b<a, I c<b, F d, I e<d', 1, false, ['c', 'b', 'a']],
    ['an old chain no kept point needs goes, children first', 'F a, I b<a, F c, F d, F e', 3, false, ['b', 'a']],
    ['handles-chains: the parent may go', 'F a, I b<a, I c<b, I d<c', 2, true, ['b', 'a']],
    ['an increment with an unknown base is kept as any other', 'I a<zz, I b<a, F c', 1, false, ['b', 'a']],
    ['a fractional keepLast deletes nothing', 'F a, F b', 1.5, false, []],
  ];
  it.each(cases)('%s', (_name, spec, keepLast, handlesChains, expected) => {
    expect(backupsToDelete(chain(spec), { keepLast, handlesChains })).toEqual(expected);
  });

  it('orders records of one millisecond by id, whatever order they come in', () => {
    const same = [
      { id: 'bkp_2', createdAt: 5, parentId: null, mode: 'FULL' },
      { id: 'bkp_1', createdAt: 5, parentId: null, mode: 'FULL' },
      { id: 'bkp_3', createdAt: 5, parentId: null, mode: 'FULL' },
    ];
    expect(backupsToDelete(same, { keepLast: 1, handlesChains: false })).toEqual(['bkp_2', 'bkp_1']);
  });

  it('stops on a corrupt parent cycle', () => {
    const cyclic = [
      { id: 'a', createdAt: 1, parentId: 'b', mode: 'INCREMENT' },
      { id: 'b', createdAt: 2, parentId: 'a', mode: 'INCREMENT' },
      { id: 'c', createdAt: 3, parentId: 'b', mode: 'INCREMENT' },
    ];
    expect(backupsToDelete(cyclic, { keepLast: 1, handlesChains: false })).toEqual([]);
  });

  describe('with expiry times', () => {
    /** Records of `chain(spec)`, those named in `expired` expiring at t=10. */
    const expiring = (spec: string, expired: string[]) =>
      chain(spec).map((b) => ({ ...b, expiresAt: expired.includes(b.id) ? 10 : null }));
    const cases: [string, string, string[], number | null, number | undefined, boolean, string[]][] = [
      ['an expired point goes without keep-last', 'F a, F b, F c', ['a'], null, 10, false, ['a']],
      ['not yet expired stays', 'F a, F b, F c', ['a'], null, 9, false, []],
      ['expiry is ignored without now', 'F a, F b', ['a', 'b'], null, undefined, false, []],
      ['expiry and keep-last together', 'F a, F b, F c, F d', ['d'], 2, 10, false, ['d', 'b', 'a']],
      ['an expired base of a kept increment stays', 'F a, I b<a', ['a'], null, 10, false, []],
      ['an expired chain goes, children first', 'F a, I b<a, F c', ['a', 'b'], null, 10, false, ['b', 'a']],
      ['handles-chains: an expired base goes', 'F a, I b<a', ['a'], null, 10, true, ['a']],
    ];
    it.each(cases)('%s', (_name, spec, expired, keepLast, now, handlesChains, expected) => {
      expect(
        backupsToDelete(expiring(spec, expired), { keepLast, handlesChains, ...(now !== undefined ? { now } : {}) }),
      ).toEqual(expected);
    });
  });
});
