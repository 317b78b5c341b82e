import { describe, expect, it } from 'vitest';
import { byKey, byKeyOf } from './key-order.js';

describe('key order', () => {
  it('orders by code units, not by locale: capitals before small letters, accents after z', () => {
    expect(['b', 'é', 'a', 'B', 'z', 'a'].sort(byKey)).toEqual(['B', 'a', 'a', 'b', 'z', 'é']);
    expect(['a', 'B'].sort((x, y) => x.localeCompare(y, 'en'))).not.toEqual(['a', 'B'].sort(byKey));
  });

  it('orders items by a key of theirs, keeping equal keys in their order', () => {
    const items = [
      { id: 'tsk_2', n: 1 },
      { id: 'tsk_10', n: 2 },
      { id: 'tsk_2', n: 3 },
    ];
    expect(items.sort(byKeyOf((t) => t.id)).map((t) => t.n)).toEqual([2, 1, 3]);
  });
});
