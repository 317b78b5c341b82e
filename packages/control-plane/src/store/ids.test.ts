import { describe, expect, it } from 'vitest';
import { newId } from './ids.js';

describe('newId', () => {
  it('carries its time in the first 10 characters after the prefix, so ids sort by it', () => {
    const a = newId('tsk', Date.parse('2030-01-01'));
    const b = newId('tsk', Date.parse('2030-01-02'));
    expect(a).toMatch(/^tsk_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(a < b).toBe(true);
  });

  it('sorts ids in the order they were made when the clock stands still or goes back', () => {
    const at = Date.parse('2031-06-01');
    const made = [newId('run', at), newId('run', at), newId('run', at), newId('run', at - 60_000), newId('run', at)];
    expect([...made].sort()).toEqual(made);
    expect(new Set(made).size).toBe(made.length);
    // A later time starts afresh, after them all.
    const later = newId('run', at + 1);
    expect(made.every((id) => id < later)).toBe(true);
  });
});
