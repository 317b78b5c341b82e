import { encodeFrame } from '@cairn/proto';
import { FailureCodes } from '@cairn/proto/vocabulary';
import { recordEnvelope, type SpoolRecord } from '../spool/spool.js';

/**
 * What to do with a spooled report on a session that accepts frames up to some size; a report
 * sent goes with its frame, encoded once here (its own frame, or its part of a ReportBatch).
 */
export type Fitted =
  { action: 'send'; record: SpoolRecord; cut: boolean; frame: Uint8Array } | { action: 'drop'; why: string };

const frameOf = (record: SpoolRecord): Uint8Array => encodeFrame(recordEnvelope(record));

/** `text` cut by at least `over` UTF-8 bytes (plus room for the marker), ending in a visible marker. */
function cut(text: string, over: number): string {
  const bytes = Buffer.from(text, 'utf8');
  const keep = Math.max(0, bytes.byteLength - over - 64);
  // toString drops a character split by the cut as U+FFFD: take it off.
  return `${bytes
    .subarray(0, keep)
    .toString('utf8')
    .replace(/\uFFFD$/, '')}… [${bytes.byteLength - keep} bytes cut]`;
}

/**
 * A report as it may go out to a control plane that accepts frames up to `limit` bytes (its
 * welcome's `max_frame_bytes`). A larger frame would get the session closed, and since the report
 * stays spooled until acknowledged, every later session too: so what does not fit is made to fit,
 * keeping its seq. A result that is too large becomes a RESULT_TOO_LARGE failure (a backup whose
 * metadata cannot be stored is no usable backup); an error, progress, event or rejection keeps
 * its numbers and loses text (event data first). A report that cannot be made to fit (only an
 * absurdly small limit does that) is dropped: no session could ever carry it. Pure.
 *
 * @example fitRecord(bigEvent, 16 * 1024) // → { action: 'send', record: { ...event with data_json '' }, cut: true, frame }
 */
export function fitRecord(record: SpoolRecord, limit: number): Fitted {
  const frame = frameOf(record);
  let size = frame.byteLength;
  if (size <= limit) return { action: 'send', record, cut: false, frame };
  let next: SpoolRecord = record;
  switch (record.kind) {
    case 'result': {
      const error = record.body.error ?? {
        code: FailureCodes.RESULT_TOO_LARGE,
        message: `the operation's result is ${size} bytes, more than the control plane accepts in one frame (${limit} bytes)`,
        retryable: false,
      };
      next = { ...record, body: { ...record.body, ok: null, error } };
      size = frameOf(next).byteLength;
      if (size > limit && next.kind === 'result') {
        const e = next.body.error!;
        next = { ...next, body: { ...next.body, error: { ...e, message: cut(e.message ?? '', size - limit) } } };
      }
      break;
    }
    case 'event': {
      next = { ...record, body: { ...record.body, dataJson: '' } };
      size = frameOf(next).byteLength;
      if (size > limit && next.kind === 'event')
        next = { ...next, body: { ...next.body, message: cut(next.body.message ?? '', size - limit) } };
      break;
    }
    case 'progress':
    case 'rejected':
      next = {
        ...record,
        body: { ...record.body, message: cut(record.body.message ?? '', size - limit) },
      } as SpoolRecord;
      break;
    case 'accepted':
      break;
  }
  const fitted = frameOf(next);
  if (fitted.byteLength > limit)
    return {
      action: 'drop',
      why: `a ${record.kind} report cannot be made smaller than ${fitted.byteLength} bytes (limit ${limit})`,
    };
  return { action: 'send', record: next, cut: true, frame: fitted };
}
