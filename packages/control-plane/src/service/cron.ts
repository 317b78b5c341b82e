import { Cron } from 'croner';
import type { NextAfter } from '../domain/schedule.js';
import { isKnownTimezone } from '../domain/schedule.js';

/** What is wrong with a cron expression and time zone, by field; empty when both are valid. */
export function scheduleProblems(cron: string, timezone: string, prefix = ''): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  if (!isKnownTimezone(timezone))
    problems.push({ path: `${prefix}timezone`, message: `unknown IANA time zone "${timezone}"` });
  try {
    const c = new Cron(cron, { paused: true, ...(problems.length === 0 ? { timezone } : {}) });
    if (c.nextRun() === null) problems.push({ path: `${prefix}cron`, message: 'the expression never fires' });
  } catch (err) {
    problems.push({ path: `${prefix}cron`, message: `not a valid cron expression: ${(err as Error).message}` });
  }
  return problems;
}

/** Next fire times of a (valid) expression in its time zone, as croner computes them. */
export function nextAfter(cron: string, timezone: string): NextAfter {
  // croner is used only for this arithmetic; it never runs a timer of its own here.
  const c = new Cron(cron, { paused: true, timezone });
  return (afterMs) => c.nextRun(new Date(afterMs))?.getTime() ?? null;
}
