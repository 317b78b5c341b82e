import fs from 'node:fs';
import { rssBytes } from './processes.js';

/*
 * Resource samples of real processes and the rule that says whether a series stayed flat. A
 * series is one process incarnation: a restarted process starts a new one. Node's resident set
 * grows while it warms up (code compiled, pools filled, heap sized) and then moves with its
 * garbage collector, so the rule compares the later part of a series with its settled early part,
 * never with its first samples, and by medians, which a GC peak does not move:
 *
 * - RSS: the median of the last quarter <= the median of the second quarter x 1.25 + 24 MiB;
 * - open fds: the median of the last quarter <= the largest count of the second quarter + 8.
 *
 * A series of fewer than MIN_SAMPLES samples is too short to say anything and is not judged.
 */

/** One sample of one process. */
export interface ResourceSample {
  atMs: number;
  rssBytes: number;
  fds: number;
}

/** One process incarnation's samples, oldest first. */
export interface ResourceSeries {
  /** The process's role and incarnation, e.g. `control plane #2`. */
  label: string;
  pid: number;
  samples: ResourceSample[];
}

export const MIN_SAMPLES = 40;
export const RSS_FACTOR = 1.25;
export const RSS_SLACK_BYTES = 24 * 1024 * 1024;
export const FD_SLACK = 8;

/** What the rule found of one series. */
export interface SeriesVerdict {
  label: string;
  samples: number;
  /** False when the series is too short to judge (then `leaks` is empty). */
  judged: boolean;
  /** `rss` and/or `fds` when the later part grew past the rule's bound. */
  leaks: ('rss' | 'fds')[];
  rss: { first: number; last: number; max: number; early: number; late: number; bound: number };
  fds: { first: number; last: number; max: number; early: number; late: number; bound: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Applies the flat-resources rule to one series (pure). */
export function judgeSeries(series: ResourceSeries): SeriesVerdict {
  const { samples } = series;
  const n = samples.length;
  const rss = samples.map((s) => s.rssBytes);
  const fds = samples.map((s) => s.fds);
  const q = Math.floor(n / 4);
  const second = samples.slice(q, 2 * q);
  const lastQuarter = samples.slice(n - q);
  const judged = n >= MIN_SAMPLES;
  const rssEarly = judged ? median(second.map((s) => s.rssBytes)) : 0;
  const rssLate = judged ? median(lastQuarter.map((s) => s.rssBytes)) : 0;
  const rssBound = rssEarly * RSS_FACTOR + RSS_SLACK_BYTES;
  const fdEarly = judged ? Math.max(...second.map((s) => s.fds)) : 0;
  const fdLate = judged ? median(lastQuarter.map((s) => s.fds)) : 0;
  const fdBound = fdEarly + FD_SLACK;
  const leaks: SeriesVerdict['leaks'] = [];
  if (judged && rssLate > rssBound) leaks.push('rss');
  if (judged && fdLate > fdBound) leaks.push('fds');
  const span = (xs: number[]) => ({ first: xs[0] ?? 0, last: xs.at(-1) ?? 0, max: xs.length ? Math.max(...xs) : 0 });
  return {
    label: series.label,
    samples: n,
    judged,
    leaks,
    rss: { ...span(rss), early: rssEarly, late: rssLate, bound: rssBound },
    fds: { ...span(fds), early: fdEarly, late: fdLate, bound: fdBound },
  };
}

/** Samples skipped at an incarnation's start (loading), then how many make its start level. */
export const START_SKIP = 10;
export const START_SAMPLES = 20;

/** What the restart rule found of one role (a process and all its incarnations). */
export interface RestartVerdict {
  role: string;
  /** Each incarnation's start level (median RSS of its samples START_SKIP..+START_SAMPLES), in order. */
  starts: { label: string; rssBytes: number }[];
  judged: boolean;
  /** The last start level passed the first's × RSS_FACTOR + RSS_SLACK_BYTES. */
  grows: boolean;
  bound: number;
}

/**
 * The restart rule (pure): a process started again on the same state must not start larger each
 * time, as one that reads more of its history at every start does. Per role (the label before
 * ` #n`), each incarnation with enough samples gets a start level; with at least three, the
 * last must stay within the first's × 1.25 + 24 MiB.
 */
export function judgeRestarts(series: readonly ResourceSeries[]): RestartVerdict[] {
  const roles = new Map<string, ResourceSeries[]>();
  for (const s of series) {
    const role = s.label.replace(/ #\d+$/, '');
    roles.set(role, [...(roles.get(role) ?? []), s]);
  }
  return [...roles].map(([role, list]) => {
    const starts = list
      .filter((s) => s.samples.length >= START_SKIP + START_SAMPLES)
      .map((s) => ({
        label: s.label,
        rssBytes: median(s.samples.slice(START_SKIP, START_SKIP + START_SAMPLES).map((x) => x.rssBytes)),
      }));
    const judged = starts.length >= 3;
    const bound = judged ? starts[0]!.rssBytes * RSS_FACTOR + RSS_SLACK_BYTES : 0;
    return { role, starts, judged, grows: judged && starts.at(-1)!.rssBytes > bound, bound };
  });
}

/** A restart verdict in one line (MiB). */
export function restartFigures(v: RestartVerdict): string {
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
  const rule = v.judged
    ? ` [last ${mib(v.starts.at(-1)!.rssBytes)} <= ${mib(v.bound)} MiB${v.grows ? '; GROWS' : ''}]`
    : ' [fewer than 3 incarnations long enough to judge]';
  return `${v.role}: start RSS ${v.starts.map((x) => mib(x.rssBytes)).join(', ')} MiB${rule}`;
}

/** A verdict in one line: RSS in MiB and fds, first/last/max (and the rule's figures when judged). */
export function verdictFigures(v: SeriesVerdict): string {
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
  const rule = v.judged
    ? ` [late ${mib(v.rss.late)} <= ${mib(v.rss.bound)} MiB, fds late ${v.fds.late} <= ${v.fds.bound}${v.leaks.length ? `; LEAK ${v.leaks.join('+')}` : ''}]`
    : ' [too short to judge]';
  return `${v.label} (${v.samples} samples): RSS ${mib(v.rss.first)}/${mib(v.rss.last)}/${mib(v.rss.max)} MiB, fds ${v.fds.first}/${v.fds.last}/${v.fds.max}${rule}`;
}

/** The open file descriptors of process `pid` (Linux: /proc). */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Samples the processes `current()` answers (label and pid of each live incarnation) every
 * `everyMs` until stopped; a pid not seen before starts a new series.
 */
export class ResourceSampler {
  private readonly byPid = new Map<number, ResourceSeries>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly current: () => { label: string; pid: number }[],
    private readonly everyMs: number,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): ResourceSeries[] {
    clearInterval(this.timer);
    return [...this.byPid.values()];
  }

  private sample(): void {
    const atMs = Date.now();
    for (const { label, pid } of this.current()) {
      let sample: ResourceSample;
      try {
        sample = { atMs, rssBytes: rssBytes(pid), fds: openFds(pid) };
      } catch {
        continue; // it died between the listing and the read: its series ends here
      }
      let series = this.byPid.get(pid);
      if (!series) this.byPid.set(pid, (series = { label, pid, samples: [] }));
      series.samples.push(sample);
    }
  }
}
