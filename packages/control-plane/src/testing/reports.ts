import type { Report } from '../domain/report-outcome.js';

/** Reports of attempt 1 as an agent's session hands them in, for store and lifecycle tests. */
export const testReports = {
  accepted: (taskId: string, seq: number): Report => ({ kind: 'accepted', seq, taskId, attempt: 1, at: Date.now() }),
  /** Progress at `percent` of 100 bytes, its message `at <percent>`. */
  progress: (taskId: string, seq: number, percent: number): Report => ({
    kind: 'progress',
    seq,
    taskId,
    attempt: 1,
    percent,
    bytesDone: percent,
    bytesTotal: 100,
    message: `at ${percent}`,
    at: Date.now(),
  }),
  /** A plugin's note (`provider.note`). */
  event: (taskId: string, seq: number, data: string | null): Report => ({
    kind: 'event',
    seq,
    taskId,
    attempt: 1,
    type: 'provider.note',
    message: 'a note',
    data,
    at: Date.now(),
  }),
  /** A failure with code `BROKE`. */
  failed: (taskId: string, seq: number): Report => ({
    kind: 'result',
    seq,
    taskId,
    attempt: 1,
    at: Date.now(),
    outcome: { ok: false, code: 'BROKE', message: 'broke', retryable: false },
  }),
};
