import { Cron } from 'croner';
import type { Cadence, CronCalendar, NextAfter } from '../domain/schedule.js';
import {
  CADENCE_HORIZON_MS,
  MAX_FIRE_GAP_MS,
  cadence,
  floorProblem,
  isKnownTimezone,
  offsetChangeIn,
  rarityProblem,
  utcOffsetChanges,
} from '../domain/schedule.js';

type Problem = { path: string; message: string };

/**
 * What is wrong with a cron expression and time zone, by field (empty when both are valid), and
 * the cron's cadence from `now` when they are. `floorS`: the fewest seconds its fires may come
 * apart; a closer pair is a problem too, flagged `tooFrequent`.
 */
export function checkSchedule(
  cron: string,
  timezone: string,
  now: number,
  opts: { prefix?: string; floorS?: number } = {},
): { problems: Problem[]; tooFrequent: boolean; cadence?: Cadence } {
  const path = `${opts.prefix ?? ''}cron`;
  const problems: Problem[] = [];
  if (!isKnownTimezone(timezone))
    problems.push({ path: `${opts.prefix ?? ''}timezone`, message: `unknown IANA time zone "${timezone}"` });
  let next: NextAfter;
  try {
    next = boundedNextAfter(cron, problems.length === 0 ? timezone : undefined, now);
  } catch (err) {
    problems.push({ path, message: `not a valid cron expression: ${(err as Error).message}` });
    return { problems, tooFrequent: false };
  }
  if (problems.length > 0) return { problems, tooFrequent: false };
  const floorMs = (opts.floorS ?? 0) * 1000;
  const c = cadence(next, now, utcOffsetChanges(timezone, now, now + CADENCE_HORIZON_MS), floorMs);
  const rare = rarityProblem(c);
  if (rare) return { problems: [{ path, message: rare }], tooFrequent: false, cadence: c };
  const often = opts.floorS === undefined ? undefined : floorProblem(c, opts.floorS);
  if (often) return { problems: [{ path, message: often }], tooFrequent: true, cadence: c };
  return { problems, tooFrequent: false, cadence: c };
}

/**
 * Next fire times found only in the calendar years that judging a cadence from `now` can reach:
 * the expression gets a year field, so croner never scans further, however rarely it fires.
 */
function boundedNextAfter(cron: string, timezone: string | undefined, now: number): NextAfter {
  const parts = cron.trim().split(/\s+/);
  if (parts.length === 5) parts.unshift('0');
  if (parts.length !== 6) throw new Error('must have 5 or 6 fields');
  // A year either side covers any time zone's offset from UTC.
  const first = new Date(now).getUTCFullYear() - 1;
  const last = new Date(now + CADENCE_HORIZON_MS + MAX_FIRE_GAP_MS).getUTCFullYear() + 1;
  const c = new Cron([...parts, `${first}-${last}`].join(' '), {
    paused: true,
    ...(timezone !== undefined ? { timezone } : {}),
  });
  return (afterMs) => c.nextRun(new Date(afterMs))?.getTime() ?? null;
}

/** Next fire times of a (valid) expression in its time zone, as croner computes them. */
export function nextAfter(cron: string, timezone: string): NextAfter {
  // croner is used only for this arithmetic; it never runs a timer of its own here.
  const c = new Cron(cron, { paused: true, timezone });
  return (afterMs) => c.nextRun(new Date(afterMs))?.getTime() ?? null;
}

const DAY_S = 86_400;

/**
 * The parts of croner's parsed pattern the catch-up arithmetic reads (croner 11 keeps them on
 * `Cron#_states.pattern`: one 0/1 flag per value; cron.test.ts pins this).
 */
interface ParsedPattern {
  second: number[];
  minute: number[];
  hour: number[];
  isFixedTime: boolean;
}

function parsedPattern(c: Cron): ParsedPattern {
  const p = (c as unknown as { _states?: { pattern?: Partial<ParsedPattern> } })._states?.pattern;
  const flags = (a: unknown, n: number) => Array.isArray(a) && a.length === n;
  if (!p || !flags(p.second, 60) || !flags(p.minute, 60) || !flags(p.hour, 24) || typeof p.isFixedTime !== 'boolean')
    throw new Error('croner no longer exposes its parsed pattern as expected (second/minute/hour/isFixedTime)');
  return p as ParsedPattern;
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The offset of `timezone` from UTC at instant `t` (epoch s), in seconds. */
export function utcOffsetSeconds(timezone: string, t: number): number {
  let f = offsetFormats.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' });
    offsetFormats.set(timezone, f);
  }
  const name = f.formatToParts(t * 1000).find((x) => x.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /^GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(name);
  if (!m) return 0; // "GMT": UTC itself
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4] ?? 0));
}

/** Per zone and UTC day (epoch s / 86400): the offset change in that day, or null. Bounded. */
const dayChanges = new Map<string, number | null>();

/** The instants in (from, to] (epoch s) where `timezone` changes its UTC offset, to the second. */
function offsetChanges(timezone: string, from: number, to: number): number[] {
  const out: number[] = [];
  if (dayChanges.size > 200_000) dayChanges.clear();
  for (let day = Math.floor(from / DAY_S); day * DAY_S < to; day++) {
    const key = `${timezone} ${day}`;
    let c = dayChanges.get(key);
    if (c === undefined) {
      c = offsetChangeIn((t) => utcOffsetSeconds(timezone, t), day * DAY_S, (day + 1) * DAY_S);
      dayChanges.set(key, c);
    }
    if (c !== null && c > from && c <= to) out.push(c);
  }
  return out;
}

const calendars = new Map<string, CronCalendar>();

/**
 * A (valid) expression in its time zone for the catch-up arithmetic (domain/schedule.ts firesIn):
 * its time-of-day sets from croner's parsed pattern, and "which day fires" from croner evaluated
 * on the wall calendar (UTC, where no day has a daylight saving change). Kept for reuse.
 */
export function cronCalendar(cron: string, timezone: string): CronCalendar {
  const key = `${timezone} ${cron}`;
  const known = calendars.get(key);
  if (known) return known;
  const p = parsedPattern(new Cron(cron, { paused: true, timezone }));
  const wall = new Cron(cron, { paused: true, utcOffset: 0 });
  const cal: CronCalendar = {
    hours: p.hour.map(Boolean),
    minutes: p.minute.map(Boolean),
    seconds: p.second.map(Boolean),
    fixedTime: p.isFixedTime,
    nextFireDay(day) {
      const t = wall.nextRun(new Date(day * DAY_S * 1000 - 1));
      return t === null ? null : Math.floor(t.getTime() / (DAY_S * 1000));
    },
    offsetAt: (t) => utcOffsetSeconds(timezone, t),
    offsetChanges: (from, to) => offsetChanges(timezone, from, to),
  };
  if (calendars.size >= 10_000) calendars.delete(calendars.keys().next().value!);
  calendars.set(key, cal);
  return cal;
}
