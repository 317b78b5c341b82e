import type { Operation } from '@cairn/plugin-sdk';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, type wire } from '@cairn/proto';
import type { Guarded, TaskFailure } from '../plugin-host/guard.js';

/** The outcome part of a Result message: exactly one of `ok` and `error`. */
export type ResultOutcome = { ok: wire.ISuccess } | { error: wire.ITaskError };

function nonNegativeInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

function toJson(value: unknown): string {
  const text = JSON.stringify(value ?? null);
  // JSON.stringify gives undefined for functions and symbols.
  return text === undefined ? 'null' : text;
}

const badResult = (message: string): { error: wire.ITaskError } => ({
  error: { code: 'PLUGIN_CRASHED', message: `the plugin returned an invalid result: ${message}`, retryable: false },
});

/**
 * Turns what the guard returned into the wire outcome. A backup must describe the backup it
 * made (an external id, a size); other operations return JSON-able output. Plugin output is
 * untrusted, so anything malformed is a failure rather than an exception.
 */
export function resultOutcome(operation: Operation, outcome: Guarded<unknown>, requestedMode: unknown): ResultOutcome {
  if (!outcome.ok) return failureOutcome(outcome.failure);
  try {
    if (operation !== 'backup') return { ok: { outputJson: toJson(outcome.value) } };
    const b = outcome.value as Record<string, unknown> | null | undefined;
    if (typeof b !== 'object' || b === null) return badResult('a backup must return an object');
    if (typeof b['externalId'] !== 'string' || b['externalId'] === '') return badResult('the backup has no externalId');
    const sizeBytes = nonNegativeInt(b['sizeBytes']);
    if (sizeBytes === undefined) return badResult('the backup has no valid sizeBytes');
    const mode =
      b['mode'] === 'FULL' || b['mode'] === 'INCREMENT'
        ? b['mode']
        : requestedMode === 'INCREMENT'
          ? 'INCREMENT'
          : 'FULL';
    // A full backup adds all it stores; for an increment, unknown stays 0.
    const addedBytes = nonNegativeInt(b['addedBytes']) ?? (mode === 'FULL' ? sizeBytes : 0);
    const backup: wire.IBackupMetadata = {
      externalId: b['externalId'],
      sizeBytes,
      addedBytes,
      mode,
      parentExternalId: typeof b['parentExternalId'] === 'string' ? b['parentExternalId'] : '',
      extraJson: b['extra'] === undefined || b['extra'] === null ? '' : toJson(b['extra']),
    };
    return { ok: { backup, outputJson: '' } };
  } catch (err) {
    // A getter that throws, a cycle in the output, a BigInt...
    return badResult(err instanceof Error ? err.message : 'the output cannot be read');
  }
}

export function failureOutcome(failure: TaskFailure): { error: wire.ITaskError } {
  return { error: { code: failure.code, message: failure.message, retryable: failure.retryable } };
}

/** Room left in a frame for the Result's own fields (ids, seq, timestamps). */
const FRAME_MARGIN = 4 * 1024;

/**
 * Replaces a result too large for one frame with a RESULT_TOO_LARGE failure. Without this, the
 * control plane would close every session on which the agent re-sends the record, forever.
 */
export function fitResult(outcome: ResultOutcome, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): ResultOutcome {
  const size = encodeFrame({ result: outcome }).byteLength;
  if (size <= maxFrameBytes - FRAME_MARGIN) return outcome;
  return {
    error: {
      code: 'RESULT_TOO_LARGE',
      message: `the operation's result is ${size} bytes, more than one protocol frame may carry (${maxFrameBytes - FRAME_MARGIN} bytes)`,
      retryable: false,
    },
  };
}
