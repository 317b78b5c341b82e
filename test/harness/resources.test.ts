import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';
import { judgeRestarts, judgeSeries, MIN_SAMPLES, type ResourceSample } from './resources.js';

const MiB = 1024 * 1024;

/** `n` samples, one a second, of `rss(i)` MiB and `fds(i)` descriptors. */
function series(n: number, rss: (i: number) => number, fds: (i: number) => number) {
  const samples: ResourceSample[] = Array.from({ length: n }, (_, i) => ({
    atMs: i * 1000,
    rssBytes: Math.round(rss(i) * MiB),
    fds: fds(i),
  }));
  return { label: 'p #1', pid: 1, samples };
}

describe('the flat-resources rule', () => {
  const rand = seededRandom(7);
  /** A garbage collector's sawtooth: the heap grows 3 MiB a sample and drops back every 10. */
  const sawtooth = (base: number) => (i: number) => base + (i % 10) * 3 + rand() * 4;

  it('passes a warm-up followed by a GC sawtooth and a few connections coming and going', () => {
    const warmUp = (i: number) => (i < 15 ? 60 + i * 4 : 120);
    const v = judgeSeries(
      series(
        200,
        (i) => warmUp(i) + sawtooth(0)(i),
        (i) => 22 + (i % 7 < 3 ? 4 : 0),
      ),
    );
    expect(v.judged).toBe(true);
    expect(v.leaks).toEqual([]);
  });

  it('passes a sawtooth whose peaks reach 60 % over its floor in the last quarter', () => {
    const v = judgeSeries(
      series(
        120,
        (i) => (i > 90 && i % 5 === 0 ? 190 : 120),
        () => 30,
      ),
    );
    expect(v.leaks).toEqual([]);
  });

  it('catches memory that grows 1 MiB a sample (an hour at one sample a second: a MiB a few seconds)', () => {
    const v = judgeSeries(
      series(
        200,
        (i) => 100 + i + sawtooth(0)(i),
        () => 30,
      ),
    );
    expect(v.leaks).toEqual(['rss']);
  });

  it('catches memory that steps up once and stays up (a cache never emptied)', () => {
    const v = judgeSeries(
      series(
        100,
        (i) => (i < 60 ? 100 : 180),
        () => 30,
      ),
    );
    expect(v.leaks).toEqual(['rss']);
  });

  it('catches one descriptor kept every few samples (a socket never closed per kill)', () => {
    const v = judgeSeries(
      series(
        100,
        () => 120,
        (i) => 25 + Math.floor(i / 3),
      ),
    );
    expect(v.leaks).toEqual(['fds']);
  });

  it('does not judge a series shorter than the minimum, however it grows', () => {
    const v = judgeSeries(
      series(
        MIN_SAMPLES - 1,
        (i) => 100 + i * 50,
        (i) => i * 10,
      ),
    );
    expect(v.judged).toBe(false);
    expect(v.leaks).toEqual([]);
  });
});

describe('the restart rule', () => {
  /** Incarnations of one role, each flat at its own level (MiB), `n` samples each. */
  const incarnations = (role: string, levels: number[], n = 60) =>
    levels.map((level, k) => ({
      ...series(
        n,
        () => level,
        () => 20,
      ),
      label: `${role} #${k + 1}`,
    }));

  it('passes an agent that starts at about the same size each time', () => {
    const [v] = judgeRestarts(incarnations('agent 1', [80, 74, 92, 85, 101]));
    expect(v).toMatchObject({ role: 'agent 1', judged: true, grows: false });
    expect(v!.starts).toHaveLength(5);
  });

  it('finds one that starts larger each time (an hour-long run before the log fix: 82 → 156 MiB)', () => {
    const [v] = judgeRestarts(incarnations('agent 1', [82, 73, 79, 101, 114, 120, 141, 144, 156]));
    expect(v).toMatchObject({ judged: true, grows: true });
  });

  it('judges roles apart, and not with fewer than three incarnations long enough', () => {
    const verdicts = judgeRestarts([
      ...incarnations('agent 1', [80, 200]),
      ...incarnations('agent 2', [80, 200, 90], 25),
      ...incarnations('control plane', [120, 130, 125]),
    ]);
    expect(verdicts.map((v) => [v.role, v.judged, v.grows])).toEqual([
      ['agent 1', false, false],
      ['agent 2', false, false],
      ['control plane', true, false],
    ]);
  });
});
