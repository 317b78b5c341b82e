import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from './heartbeat.js';

describe('the heartbeat', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  const started = (intervalMs: number) => {
    const beats: number[] = [];
    const silences: number[] = [];
    const hb = new Heartbeat({
      intervalMs,
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
});
