import { FailureCodes } from '../errors.js';
import type { Operation } from '../manifest.js';
import type { TaskFailure } from './guard.js';
import { checkPreflight, secretStrings } from './preflight.js';

/** A backup as the agent reports it, and the control plane stores it, once it has been checked. */
export interface BackupRecord {
  externalId: string;
  sizeBytes: number;
  addedBytes: number;
  mode: 'FULL' | 'INCREMENT';
  /** `''` when the backup has no parent. */
  parentExternalId: string;
  /** The backup's `extra` as JSON, `''` when it has none. */
  extraJson: string;
}

/**
 * What the agent makes of a value an operation resolved with: a backup record for `backup`, the
 * output as JSON for every other operation, or the failure the task ends with instead.
 */
export type CheckedResult =
  | { ok: true; backup: BackupRecord; outputJson: '' }
  | { ok: true; backup?: undefined; outputJson: string }
  | { ok: false; failure: TaskFailure };

/** The message prefix of every result the agent refuses. */
export const INVALID_RESULT = 'the plugin returned an invalid result';

function nonNegativeInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

function toJson(value: unknown): string {
  const text = JSON.stringify(value ?? null);
  // JSON.stringify gives undefined for functions and symbols.
  return text === undefined ? 'null' : text;
}

const invalid = (message: string): CheckedResult => ({
  ok: false,
  failure: { code: FailureCodes.PLUGIN_CRASHED, message: `${INVALID_RESULT}: ${message}`, retryable: false },
});

/**
 * Checks what an operation resolved with, as the agent does before it reports success. A backup
 * must describe the backup it made: a non-empty `externalId` and a non-negative `sizeBytes`;
 * `mode` defaults to the requested one, `addedBytes` to `sizeBytes` for a full backup (0 for an
 * increment). A preflight must answer what {@link checkPreflight} accepts; its output is the
 * checked report, with every string of `credentials` blanked. Other operations return JSON-able
 * output. Plugin output is untrusted, so anything malformed is a PLUGIN_CRASHED failure rather
 * than an exception.
 *
 * @example
 * checkResult('backup', { sizeBytes: 10 }, 'FULL');
 * // → { ok: false, failure: { code: 'PLUGIN_CRASHED', message: 'the plugin returned an invalid result: the backup has no externalId', retryable: false } }
 */
export function checkResult(
  operation: Operation,
  value: unknown,
  requestedMode: unknown,
  options: { credentials?: unknown } = {},
): CheckedResult {
  try {
    if (operation === 'preflight') {
      const checked = checkPreflight(value, secretStrings(options.credentials));
      return checked.ok ? { ok: true, outputJson: toJson(checked.report) } : invalid(checked.reason);
    }
    if (operation !== 'backup') return { ok: true, outputJson: toJson(value) };
    const b = value as Record<string, unknown> | null | undefined;
    if (typeof b !== 'object' || b === null) return invalid('a backup must return an object');
    if (typeof b['externalId'] !== 'string' || b['externalId'] === '') return invalid('the backup has no externalId');
    const sizeBytes = nonNegativeInt(b['sizeBytes']);
    if (sizeBytes === undefined) return invalid('the backup has no valid sizeBytes');
    const mode =
      b['mode'] === 'FULL' || b['mode'] === 'INCREMENT'
        ? b['mode']
        : requestedMode === 'INCREMENT'
          ? 'INCREMENT'
          : 'FULL';
    // A full backup adds all it stores; for an increment, unknown stays 0.
    const addedBytes = nonNegativeInt(b['addedBytes']) ?? (mode === 'FULL' ? sizeBytes : 0);
    const backup: BackupRecord = {
      externalId: b['externalId'],
      sizeBytes,
      addedBytes,
      mode,
      parentExternalId: typeof b['parentExternalId'] === 'string' ? b['parentExternalId'] : '',
      extraJson: b['extra'] === undefined || b['extra'] === null ? '' : toJson(b['extra']),
    };
    return { ok: true, backup, outputJson: '' };
  } catch (err) {
    // A getter that throws, a cycle in the output, a BigInt...
    return invalid(err instanceof Error ? err.message : 'the output cannot be read');
  }
}

/**
 * The copy of a value that crosses the boundary of a plugin's worker thread: plain JSON data
 * (`undefined` becomes `null`, a Date its ISO string). Throws on what JSON cannot carry (a
 * cycle, a BigInt), which fails the operation.
 */
export function toPlain(value: unknown): unknown {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}
