/** How the console writes sizes, rates and durations: pure, so they are tested without a page. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1536` → `1.5 KiB`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '–';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

/** Bytes a second → `2.0 MiB/s`. */
export function rate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined || !(bytesPerSecond >= 0)) return '–';
  return `${bytes(Math.round(bytesPerSecond))}/s`;
}

/** Seconds → `1 h 02 min`, `3 min 05 s`, `42 s`. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  const pad = (x: number) => String(x).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${s} s`;
}

/** A progress sample: bytes done at a time (ms). */
export interface Sample {
  bytesDone: number;
  at: number;
}

/** The transfer rate between two samples, in bytes a second (undefined when it cannot be told). */
export function rateBetween(before: Sample | undefined, after: Sample): number | undefined {
  if (!before || after.at <= before.at || after.bytesDone < before.bytesDone) return undefined;
  return ((after.bytesDone - before.bytesDone) * 1000) / (after.at - before.at);
}

/** How many of `tasks` ended in each state since `sinceMs`. */
export function outcomes(tasks: { state: string; endedAt: string | null }[], sinceMs: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of tasks) {
    if (!t.endedAt || Date.parse(t.endedAt) < sinceMs) continue;
    counts[t.state] = (counts[t.state] ?? 0) + 1;
  }
  return counts;
}

/** One tenant's protection figures as `GET /v1/usage` shows them (the fields Home reads). */
export interface ProtectionFigures {
  protectedInstances: number;
  unprotectedInstances: number;
  rpoBreachedInstances: number;
}

/** The protection figures of every tenant on the pages read, added up. */
export function protection(items: readonly ProtectionFigures[]): ProtectionFigures {
  const sum: ProtectionFigures = { protectedInstances: 0, unprotectedInstances: 0, rpoBreachedInstances: 0 };
  for (const u of items) {
    sum.protectedInstances += u.protectedInstances;
    sum.unprotectedInstances += u.unprotectedInstances;
    sum.rpoBreachedInstances += u.rpoBreachedInstances;
  }
  return sum;
}

/** A backup job with its schedules, as `GET /v1/backup-jobs` shows it (the fields an instance's page reads). */
export interface ScheduledJob {
  id: string;
  name: string;
  schedules: { id: string; cron: string; timezone: string; nextRunAt: string | null }[];
}
