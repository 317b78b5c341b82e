import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from './heartbeat.js';

describe('the heartbeat', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  /** A started heartbeat; with an idle interval, `holding` says whether the agent holds a task. */
  const started = (intervalMs: number, idle?: { intervalMs: number; holding: { now: boolean } }) => {
    const beats: number[] = [];
    const silences: number[] = [];
    const hb = new Heartbeat({
      intervalMs,
      ...(idle && { idleIntervalMs: idle.intervalMs, holding: () => idle.holding.now }),
      clock: { now: () => Date.now() },
      beat: () => beats.push(Date.now()),
      silent: (ms) => silences.push(ms),
    });
    hb.start();
    return { hb, beats, silences };
  };

  it('beats once per interval and counts the peer gone after three intervals of silence', () => {
    const { beats, silences } = started(1000);
    vi.advanceTimersByTime(2999);
    expect(beats).toEqual([500, 1500, 2500]);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(1100);
    expect(silences).toEqual([3500]);
  });

  it('beats at the new interval once retimed, and allows the longer silence that goes with it', () => {
    const { hb, beats, silences } = started(1000);
    vi.advanceTimersByTime(1000);
    hb.heard();
    hb.retime(10_000);
    expect(hb.interval).toBe(10_000);
    beats.length = 0;
    vi.advanceTimersByTime(25_000);
    // Three beats in 25 s, not 25; no silence yet, though 25 s passed since the peer was heard.
    expect(beats).toEqual([6000, 16_000, 26_000]);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(10_000);
    expect(silences.length).toBe(1);
    expect(silences[0]).toBeGreaterThan(30_000);
  });

  it('retimed before it starts, it starts at the new interval', () => {
    const beats: number[] = [];
    const hb = new Heartbeat({
      intervalMs: 1000,
      clock: { now: () => Date.now() },
      beat: () => beats.push(Date.now()),
      silent: () => {},
    });
    hb.retime(4000);
    hb.start();
    vi.advanceTimersByTime(9000);
    expect(beats).toEqual([2000, 6000]);
    hb.stop();
  });

  describe('while the agent holds no task', () => {
    const idleStarted = (intervalMs: number, idleIntervalMs: number, holding: { now: boolean }) =>
      started(intervalMs, { intervalMs: idleIntervalMs, holding });

    it('beats at the idle interval, and at once and at the interval again when it takes a task', () => {
      const holding = { now: false };
      const { hb, beats } = idleStarted(1000, 4000, holding);
      // Answered every time, as the control plane does.
      const answer = setInterval(() => hb.heard(), 100);
      vi.advanceTimersByTime(9000);
      expect(beats).toEqual([500, 4500, 8500]);
      holding.now = true; // an assignment taken at 9,000
      vi.advanceTimersByTime(3000);
      expect(beats).toEqual([500, 4500, 8500, 9500, 10_500, 11_500]);
      holding.now = false; // the result acknowledged
      vi.advanceTimersByTime(9000);
      expect(beats).toEqual([500, 4500, 8500, 9500, 10_500, 11_500, 15_500, 19_500]);
      clearInterval(answer);
      hb.stop();
    });

    it('allows three idle intervals of silence while idle, and no less until the peer answers a busy beat', () => {
      const holding = { now: false };
      const { beats, silences } = idleStarted(1000, 4000, holding);
      vi.advanceTimersByTime(11_000);
      expect(silences).toEqual([]); // 11 s unanswered: within 3 × 4 s
      holding.now = true;
      vi.advanceTimersByTime(900);
      expect(beats.at(-1)).toBe(11_500); // the beat at once
      expect(silences).toEqual([]); // 12 s is not yet more than 3 × 4 s, though it is 12 busy intervals
      vi.advanceTimersByTime(600);
      expect(silences).toEqual([12_500]);
    });

    it('once answered while busy, allows three busy intervals', () => {
      const holding = { now: true };
      const { hb, silences } = idleStarted(1000, 4000, holding);
      vi.advanceTimersByTime(600);
      hb.heard();
      vi.advanceTimersByTime(3000);
      expect(silences).toEqual([]);
      vi.advanceTimersByTime(500);
      expect(silences).toEqual([3400]); // heard at 600, checked at 4,000
    });

    it('beats at the interval when told no idle interval, or a shorter one, and takes a later one', () => {
      for (const idle of [0, 500]) {
        const { hb, beats } = idleStarted(1000, idle, { now: false });
        vi.advanceTimersByTime(2999);
        expect(beats.slice(-3)).toEqual([Date.now() - 2499, Date.now() - 1499, Date.now() - 499]);
        expect(hb.idleInterval).toBe(1000);
        hb.retime(1000, 2000);
        expect(hb.idleInterval).toBe(2000);
        hb.stop();
      }
    });
  });
});
