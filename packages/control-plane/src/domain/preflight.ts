/**
 * Provider preflight: what a preflight task's output says. The agent checked the plugin's answer
 * before reporting it (at most 50 checks, bounded text, `ok` = every check's `ok`, credentials
 * blanked); this reads it back from the store. Pure.
 */
import { isObject } from './sync.js';

/** One check of a preflight, as the API answers it. */
export interface PreflightCheck {
  name: string;
  ok: boolean;
  message: string;
  advice?: string;
}

export interface PreflightReport {
  ok: boolean;
  checks: PreflightCheck[];
}

export const PREFLIGHT_LIMITS = {
  /** The most checks an agent reports. */
  checks: 50,
} as const;

/** The one check an answer without checks (`{ok, message?}`) stands for. */
const SYNTHETIC = 'preflight';

function check(raw: unknown): PreflightCheck | undefined {
  if (!isObject(raw)) return undefined;
  const { name, ok, message, advice } = raw;
  if (typeof name !== 'string' || name === '' || typeof ok !== 'boolean' || typeof message !== 'string')
    return undefined;
  if (advice !== undefined && typeof advice !== 'string') return undefined;
  return { name, ok, message, ...(advice ? { advice } : {}) };
}

/**
 * The report of a succeeded preflight task (its output, JSON as stored), or why it has none:
 * output over the stored limit is the store's truncation note. An answer of `{ok, message?}`
 * alone is one check named `preflight`; `ok` is always every check's `ok`.
 *
 * @example parsePreflight('{"ok":true}') // → { ok: true, report: { ok: true, checks: [{ name: 'preflight', ok: true, message: 'passed' }] } }
 */
export function parsePreflight(
  output: string | null,
): { ok: true; report: PreflightReport } | { ok: false; reason: string } {
  let value: unknown;
  try {
    value = output === null ? null : JSON.parse(output);
  } catch {
    return { ok: false, reason: 'the answer is not JSON' };
  }
  if (!isObject(value)) return { ok: false, reason: 'the answer is not an object' };
  if (value['cairnTruncated'] === true)
    return { ok: false, reason: `the answer is too large to store: ${String(value['reason'])}` };
  const raw = value['checks'];
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    if (typeof value['ok'] !== 'boolean')
      return { ok: false, reason: 'the answer has neither checks nor a boolean ok' };
    const message = typeof value['message'] === 'string' && value['message'] !== '' ? value['message'] : undefined;
    const ok = value['ok'];
    return {
      ok: true,
      report: { ok, checks: [{ name: SYNTHETIC, ok, message: message ?? (ok ? 'passed' : 'failed') }] },
    };
  }
  if (!Array.isArray(raw) || raw.length > PREFLIGHT_LIMITS.checks)
    return { ok: false, reason: `the checks are not a list of at most ${PREFLIGHT_LIMITS.checks}` };
  const checks: PreflightCheck[] = [];
  for (const [i, item] of raw.entries()) {
    const c = check(item);
    if (!c) return { ok: false, reason: `check ${i} is not {name, ok, message, advice?}` };
    checks.push(c);
  }
  return { ok: true, report: { ok: checks.every((c) => c.ok), checks } };
}
