import type { Operation } from '@cairn/plugin-sdk';
import { checkResult, type Guarded, type TaskFailure } from '@cairn/plugin-sdk/host';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, type wire } from '@cairn/proto';
import { FailureCodes } from '@cairn/proto/vocabulary';

/** The outcome part of a Result message: exactly one of `ok` and `error`. */
export type ResultOutcome = { ok: wire.ISuccess } | { error: wire.ITaskError };

/**
 * Turns what the guard returned into the wire outcome, checking the value with the SDK's
 * {@link checkResult} (shared with `@cairn/plugin-sdk/testing`): a backup must describe the
 * backup it made, a preflight its checks (with the connection's `credentials` blanked in them),
 * other operations return JSON-able output; anything malformed is a failure.
 */
export function resultOutcome(
  operation: Operation,
  outcome: Guarded<unknown>,
  requestedMode: unknown,
  credentials?: unknown,
): ResultOutcome {
  if (!outcome.ok) return failureOutcome(outcome.failure);
  const checked = checkResult(operation, outcome.value, requestedMode, { credentials });
  if (!checked.ok) return failureOutcome(checked.failure);
  if (checked.backup) return { ok: { backup: checked.backup, outputJson: '' } };
  return { ok: { outputJson: checked.outputJson } };
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
      code: FailureCodes.RESULT_TOO_LARGE,
      message: `the operation's result is ${size} bytes, more than one protocol frame may carry (${maxFrameBytes - FRAME_MARGIN} bytes)`,
      retryable: false,
    },
  };
}
