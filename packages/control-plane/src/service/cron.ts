import { Cron } from 'croner';
import type { Cadence, NextAfter } from '../domain/schedule.js';
import {
  CADENCE_HORIZON_MS,
  MAX_FIRE_GAP_MS,
  cadence,
  floorProblem,
  isKnownTimezone,
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
