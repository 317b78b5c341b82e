import type { PreflightCheck } from '../provider.js';

/** Most checks one preflight may answer. */
export const MAX_PREFLIGHT_CHECKS = 50;
/** Longest check name, in characters. */
export const MAX_CHECK_NAME = 100;
/** Longest check message or advice, in characters; longer ones are cut. */
export const MAX_CHECK_TEXT = 500;
/**
 * Largest preflight answer, in UTF-8 bytes of JSON: below what the control plane stores of a
 * task's output (60,000), so the checks always arrive whole.
 */
export const MAX_PREFLIGHT_JSON = 50_000;
/** The name of the one check an answer without `checks` becomes. */
export const SYNTHETIC_CHECK = 'preflight';
/** Credential values shorter than this are not blanked (they would blank ordinary words). */
export const MIN_SECRET_LENGTH = 4;
const BLANK = '[redacted]';

/** A preflight answer as the agent reports it: `ok` is every check's `ok`. */
export interface PreflightReport {
  ok: boolean;
  checks: PreflightCheck[];
}

export type CheckedPreflight = { ok: true; report: PreflightReport } | { ok: false; reason: string };

/** Every string in a connection's credentials (at any depth) long enough to be blanked, longest first. */
export function secretStrings(credentials: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, depth: number) => {
    if (typeof v === 'string') {
      if (v.length >= MIN_SECRET_LENGTH) found.add(v);
    } else if (typeof v === 'object' && v !== null && depth < 64) {
      for (const item of Object.values(v)) walk(item, depth + 1);
    }
  };
  walk(credentials, 0);
  return [...found].sort((a, b) => b.length - a.length);
}

function blank(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(BLANK);
  return out;
}

function cut(text: string): string {
  return text.length <= MAX_CHECK_TEXT ? text : `${text.slice(0, MAX_CHECK_TEXT - 1)}…`;
}

/** Why `raw` (the check at `index`) is not a check, or the check it is. */
function readCheck(raw: unknown, index: number, secrets: readonly string[]): PreflightCheck | string {
  const where = `check ${index}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `${where} is not an object`;
  const c = raw as Record<string, unknown>;
  const name = typeof c['name'] === 'string' ? c['name'].trim() : undefined;
  if (!name) return `${where} has no name (a non-empty string)`;
  if (name.length > MAX_CHECK_NAME)
    return `${where} has a name of ${name.length} characters, more than ${MAX_CHECK_NAME}`;
  const named = `${where} (${name})`;
  if (typeof c['ok'] !== 'boolean') return `${named} has no boolean ok`;
  if (typeof c['message'] !== 'string') return `${named} has no message (a string)`;
  if (c['advice'] !== undefined && c['advice'] !== null && typeof c['advice'] !== 'string')
    return `${named} has an advice that is not a string`;
  const advice = typeof c['advice'] === 'string' ? cut(blank(c['advice'], secrets)) : '';
  return {
    name: blank(name, secrets),
    ok: c['ok'],
    message: cut(blank(c['message'], secrets)),
    ...(advice ? { advice } : {}),
  };
}

/**
 * Checks a preflight answer, as the agent does before it reports it. With `checks` (an array of
 * at most {@link MAX_PREFLIGHT_CHECKS}, each `{name, ok, message, advice?}`, names non-empty,
 * unique and at most {@link MAX_CHECK_NAME} characters), `ok` is every check's `ok`; an `ok`
 * that says otherwise is refused. Without `checks` (or with none), `{ok, message?}` becomes one
 * check named {@link SYNTHETIC_CHECK}. Messages and advice are cut to {@link MAX_CHECK_TEXT}
 * characters, every one of `secrets` in them is blanked, and the whole must fit
 * {@link MAX_PREFLIGHT_JSON} bytes of JSON. The reason names what is wrong.
 *
 * @example
 * checkPreflight({ ok: true, checks: [{ name: 'repo', ok: false, message: 'locked' }] });
 * // → { ok: false, reason: 'ok is true, but check 0 (repo) failed' }
 */
export function checkPreflight(value: unknown, secrets: readonly string[] = []): CheckedPreflight {
  const refuse = (reason: string): CheckedPreflight => ({ ok: false, reason });
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return refuse('a preflight must return an object');
  const v = value as Record<string, unknown>;
  if (v['ok'] !== undefined && typeof v['ok'] !== 'boolean') return refuse('the preflight ok is not a boolean');
  if (v['message'] !== undefined && v['message'] !== null && typeof v['message'] !== 'string')
    return refuse('the preflight message is not a string');
  const rawChecks = v['checks'];
  if (rawChecks !== undefined && rawChecks !== null && !Array.isArray(rawChecks))
    return refuse('the preflight checks are not an array');
  let report: PreflightReport;
  if (!Array.isArray(rawChecks) || rawChecks.length === 0) {
    if (typeof v['ok'] !== 'boolean') return refuse('a preflight without checks has no boolean ok');
    const message = typeof v['message'] === 'string' && v['message'] !== '' ? v['message'] : undefined;
    const check = readCheck(
      { name: SYNTHETIC_CHECK, ok: v['ok'], message: message ?? (v['ok'] ? 'passed' : 'failed') },
      0,
      secrets,
    ) as PreflightCheck;
    report = { ok: v['ok'], checks: [check] };
  } else {
    if (rawChecks.length > MAX_PREFLIGHT_CHECKS)
      return refuse(`the preflight has ${rawChecks.length} checks, more than ${MAX_PREFLIGHT_CHECKS}`);
    const checks: PreflightCheck[] = [];
    const names = new Set<string>();
    for (const [i, raw] of rawChecks.entries()) {
      const check = readCheck(raw, i, secrets);
      if (typeof check === 'string') return refuse(check);
      if (names.has(check.name)) return refuse(`check ${i} repeats the name ${check.name}`);
      names.add(check.name);
      checks.push(check);
    }
    const failed = checks.findIndex((c) => !c.ok);
    if (v['ok'] === true && failed >= 0)
      return refuse(`ok is true, but check ${failed} (${checks[failed]!.name}) failed`);
    if (v['ok'] === false && failed < 0) return refuse('ok is false, but every check passed');
    report = { ok: failed < 0, checks };
  }
  const bytes = new TextEncoder().encode(JSON.stringify(report)).length;
  if (bytes > MAX_PREFLIGHT_JSON)
    return refuse(`the preflight checks take ${bytes} bytes of JSON, more than ${MAX_PREFLIGHT_JSON}`);
  return { ok: true, report };
}
