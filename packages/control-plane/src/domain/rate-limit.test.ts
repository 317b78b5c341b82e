import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentBudget, AgentBudgets, RequestBudgets, TokenBucket, type AgentBudgetSettings } from './rate-limit.js';

const SETTINGS: AgentBudgetSettings = {
  frames: { perSecond: 100, burst: 10 },
  bytes: { perSecond: 1000, burst: 4000 },
  sessions: { intervalMs: 1000, burst: 3 },
};

describe('agent budget', () => {
  it('is one per agent: a new session of the agent finds it as the last one left it', () => {
    const budgets = new AgentBudgets(SETTINGS);
    const first = budgets.of('agt_a', 0);
    for (let i = 0; i < 10; i++) expect(first.frame(0, 1).ok).toBe(true);
    expect(first.frame(0, 1)).toEqual({ ok: false, over: 'frames' });
    // The session ended over budget; the agent comes back at once: no fresh burst.
    const again = budgets.of('agt_a', 5);
    expect(again).toBe(first);
    expect(again.frame(5, 1)).toEqual({ ok: false, over: 'frames' });
    expect(again.frame(10, 1).ok).toBe(true); // one frame refilled after 10 ms at 100/s
    // Another agent has its own.
    expect(budgets.of('agt_b', 10).frame(10, 1).ok).toBe(true);
  });

  it('counts bytes as well as frames, and takes nothing from either when a frame does not fit', () => {
    const b = new AgentBudget(SETTINGS, 0);
    expect(b.frame(0, 3000).ok).toBe(true);
    expect(b.frame(0, 1500)).toEqual({ ok: false, over: 'bytes' });
    expect(b.frame(0, 1000).ok).toBe(true); // the refused frame took no bytes
    expect(b.frame(0, 1)).toEqual({ ok: false, over: 'bytes' });
    expect(b.frame(1000, 1000).ok).toBe(true); // a second refills 1,000 bytes
  });

  it('charges what a report stores beyond its frame to the byte budget', () => {
    const b = new AgentBudget(SETTINGS, 0);
    expect(b.stores(0, -500)).toBe(true); // stores less than it sent: nothing more to pay
    expect(b.stores(0, 3500)).toBe(true);
    expect(b.stores(0, 600)).toBe(false);
  });

  it('lets a few sessions open at once, then one per interval, and says how long to wait', () => {
    const b = new AgentBudget(SETTINGS, 0);
    expect([b.session(0), b.session(0), b.session(0)].every((v) => v.ok)).toBe(true);
    expect(b.session(0)).toEqual({ ok: false, retryAfterMs: 1000 });
    expect(b.session(400)).toEqual({ ok: false, retryAfterMs: 600 });
    expect(b.session(1000).ok).toBe(true);
    const unpaced = new AgentBudget({ ...SETTINGS, sessions: { intervalMs: 0, burst: 3 } }, 0);
    for (let i = 0; i < 100; i++) expect(unpaced.session(0).ok).toBe(true);
  });

  it('is forgotten only when no session holds it and it is full again', () => {
    const budgets = new AgentBudgets(SETTINGS);
    const b = budgets.of('agt_a', 0);
    b.open++;
    b.frame(0, 4000);
    budgets.sweep(100_000);
    expect(budgets.size).toBe(1); // in use
    b.open--;
    budgets.of('agt_b', 100_000).frame(100_000, 4000);
    budgets.sweep(101_000);
    expect(budgets.size).toBe(1); // agt_a was full again and is gone; agt_b needs 4 s to refill
    expect(budgets.of('agt_b', 101_000).frame(101_000, 1001)).toEqual({ ok: false, over: 'bytes' });
    budgets.sweep(104_000);
    expect(budgets.size).toBe(0);
  });

  it('never trips an agent that keeps inside half the rates and a quarter of the bursts, however it reconnects', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 50 }), size: fc.integer({ min: 1, max: 1000 }) }), {
          maxLength: 400,
        }),
        (frames) => {
          const server = new AgentBudget(SETTINGS, 0);
          const count = new TokenBucket(50, 2, 0);
          const bytes = new TokenBucket(500, 1000, 0);
          let t = 0;
          for (const { gap, size } of frames) {
            t += gap;
            while (count.available(t) >= 1 && bytes.available(t) >= size) {
              count.take(t);
              bytes.take(t, size);
              if (!server.frame(t, size).ok) return false;
            }
          }
          return true;
        },
      ),
    );
  });
});

describe('request budgets', () => {
  it("refuses a tenant past its burst until its bucket refills, and never touches another tenant's", () => {
    const budgets = new RequestBudgets({ perSecond: 10, burst: 5 });
    for (let i = 0; i < 5; i++) expect(budgets.take('ten_a', 0)).toBe(0);
    expect(budgets.take('ten_a', 0)).toBe(100); // one request a 100 ms at 10/s
    expect(budgets.take('ten_a', 50)).toBe(50); // a refused request takes nothing
    expect(budgets.take('ten_b', 50)).toBe(0);
    expect(budgets.take('ten_a', 100)).toBe(0);
    expect(budgets.take('ten_a', 100)).toBe(100);
  });

  it('forgets only the buckets that are full again, every 1,000 new ones', () => {
    const budgets = new RequestBudgets({ perSecond: 1, burst: 2 });
    expect(budgets.take('ten_busy', 0)).toBe(0);
    for (let i = 1; i < 999; i++) budgets.take(`ten_${i}`, 0);
    expect(budgets.size).toBe(999);
    // A second later every bucket has its one request back (full); the busy tenant spends two.
    expect(budgets.take('ten_busy', 1000)).toBe(0);
    expect(budgets.take('ten_busy', 1000)).toBe(0);
    budgets.take('ten_1000', 1000); // the 1,000th new bucket: a sweep first
    expect(budgets.size).toBe(2); // the busy tenant's (not full) and the new one
    expect(budgets.take('ten_busy', 1000)).toBeGreaterThan(0); // its state survived the sweep
  });

  it('admits at most burst + perSecond × t requests over any stretch of t ms', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (gaps) => {
        const budgets = new RequestBudgets({ perSecond: 20, burst: 7 });
        let now = 0;
        const admitted: number[] = [];
        for (const gap of gaps) {
          now += gap;
          if (budgets.take('ten_x', now) === 0) admitted.push(now);
        }
        for (let i = 0; i < admitted.length; i++)
          for (let j = i; j < admitted.length; j++)
            expect(j - i + 1).toBeLessThanOrEqual(7 + (20 * (admitted[j]! - admitted[i]!)) / 1000 + 1e-9);
      }),
    );
  });
});
