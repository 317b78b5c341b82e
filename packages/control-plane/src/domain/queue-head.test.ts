import { describe, expect, it } from 'vitest';
import { KEPT_PER_READ_MS, KeptHead, type HeadTask } from './queue-head.js';

const t = (id: string, instanceId: string | null = `ins-${id}`): HeadTask => ({ id, instanceId });
const ids = (tasks: HeadTask[] | undefined) => tasks?.map((x) => x.id);

describe('KeptHead', () => {
  it('keeps a full read for the rounds that follow, without what they offered or refused', () => {
    const head = new KeptHead<HeadTask>(100);
    head.read('k', [t('a'), t('b'), t('c'), t('d'), t('e')], true, 0);
    expect(ids(head.take('k', 2, 10))).toEqual(['a', 'b', 'c', 'd', 'e']);
    head.drop([t('a'), t('b')], true);
    head.drop([t('c')], false);
    expect(ids(head.take('k', 2, 20))).toEqual(['d', 'e']);
  });

  it('never keeps a short read: the whole queue was read, and work queued since must not wait', () => {
    const head = new KeptHead<HeadTask>(100);
    head.read('k', [t('a'), t('b')], false, 0);
    expect(head.take('k', 1, 1)).toBeUndefined();
  });

  it('is read again once older than its age, under another key, or with fewer tasks than free slots', () => {
    const head = new KeptHead<HeadTask>(100);
    head.read('k', [t('a'), t('b'), t('c')], true, 1000);
    expect(head.take('k', 1, 1099)).toBeDefined();
    expect(head.take('k', 1, 1100)).toBeUndefined();
    expect(head.take('other places', 1, 1001)).toBeUndefined();
    expect(head.take('k', 4, 1001)).toBeUndefined();
    expect(ids(head.take('k', 3, 1001))).toEqual(['a', 'b', 'c']);
  });

  it('passes over an instance offered to a claim since the read (one operation at a time), until the next read', () => {
    const head = new KeptHead<HeadTask>(100);
    head.read('k', [t('a1', 'i1'), t('b1', 'i2'), t('a2', 'i1'), t('c1', null), t('b2', 'i2')], true, 0);
    // The claim of a1 lost (another replica, a cancel): i1 is passed over all the same.
    head.drop([t('a1', 'i1')], true);
    expect(ids(head.take('k', 1, 1))).toEqual(['b1', 'c1', 'b2']);
    head.read('k', [t('a2', 'i1'), t('b2', 'i2'), t('d1', 'i3')], true, 2);
    expect(ids(head.take('k', 1, 3))).toEqual(['a2', 'b2', 'd1']);
  });

  it('keeps a slow read nine times as long as it took, so reading a long queue takes at most a tenth of the time', () => {
    const head = new KeptHead<HeadTask>(100);
    // A read of 98 ms (a long queue): kept 882 ms, not 100.
    head.read('k', [t('a'), t('b'), t('c')], true, 1000, 98);
    expect(KEPT_PER_READ_MS * 98).toBe(882);
    expect(head.take('k', 1, 1100)).toBeDefined();
    expect(head.take('k', 1, 1881)).toBeDefined();
    expect(head.take('k', 1, 1882)).toBeUndefined();
    // Read again, fast: back to the 100 ms; kept or not, another key or too few tasks still read again.
    head.read('k', [t('a'), t('b'), t('c')], true, 2000, 5);
    expect(head.take('k', 1, 2099)).toBeDefined();
    expect(head.take('k', 1, 2100)).toBeUndefined();
    head.read('k', [t('a'), t('b'), t('c')], true, 3000, 500);
    expect(head.take('other places', 1, 3001)).toBeUndefined();
    expect(head.take('k', 4, 3001)).toBeUndefined();
    // The share of time spent reading while a backlog lasts: read ÷ (read + age) ≤ 1/10.
    for (const readMs of [1, 11.2, 98, 1000]) {
      const age = Math.max(100, KEPT_PER_READ_MS * readMs);
      expect(readMs / (readMs + age)).toBeLessThanOrEqual(0.1);
    }
  });
});
