import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';
import { judgeSeries, MIN_SAMPLES, type ResourceSample } from './resources.js';

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
