import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, encodeReportBatchFrame, reportBatchFrameBytes, type wire } from './index.js';

/** One report of each kind, with a message of `pad` characters (to cross the varints' byte boundaries). */
function reports(pad: number): wire.IBatchedReport[] {
  const text = 'x'.repeat(pad);
  return [
    { accepted: { spoolSeq: 1, taskId: 'tsk_1', attempt: 1, atMs: 1_700_000_000_000 } },
    { rejected: { spoolSeq: 2, taskId: 'tsk_2', attempt: 1, reasonCode: 'NO_SLOT', message: text } },
    { progress: { spoolSeq: 3, taskId: 'tsk_3', attempt: 2, percent: 100 / 3, bytesDone: 2 ** 40 + 1, message: text } },
    { event: { spoolSeq: 4, taskId: 'tsk_4', attempt: 1, type: 'provider.message', message: text, dataJson: '{}' } },
    { result: { spoolSeq: 5, taskId: 'tsk_5', attempt: 1, error: { code: 'X', message: text, retryable: true } } },
  ];
}

describe('a ReportBatch frame from reports already encoded', () => {
  it('is byte for byte what encoding the batch gives, at every varint length', () => {
    for (const pad of [0, 50, 120, 127, 128, 300, 16_300, 16_384, 70_000]) {
      for (const batch of [reports(pad), reports(pad).slice(2, 3), [...reports(pad), ...reports(pad >> 1)]]) {
        const own = batch.map((r) => encodeFrame(r as wire.IEnvelope));
        const expected = encodeFrame({ reportBatch: { reports: batch } });
        const made = encodeReportBatchFrame(own);
        expect(Buffer.from(made).equals(Buffer.from(expected)), `pad ${pad}, ${batch.length} reports`).toBe(true);
        expect(reportBatchFrameBytes(own.map((f) => f.byteLength))).toBe(expected.byteLength);
        const decoded = decodeFrame(made, 10 * 1024 * 1024);
        expect(decoded.body).toBe('reportBatch');
        const seqOf = (r: wire.IBatchedReport) =>
          Number((r.accepted ?? r.rejected ?? r.progress ?? r.event ?? r.result)?.spoolSeq);
        expect(decoded.reportBatch!.reports.map((r) => seqOf(r as wire.IBatchedReport))).toEqual(batch.map(seqOf));
      }
    }
  });

  it('refuses a frame that is not one report', () => {
    const heartbeat = encodeFrame({ heartbeat: { sentAtMs: 1, running: 0 } });
    const ack = encodeFrame({ ack: { spoolSeqs: [1] } });
    const batch = encodeFrame({ reportBatch: { reports: reports(0) } });
    for (const frame of [heartbeat, ack, batch, new Uint8Array(0)])
      expect(() => encodeReportBatchFrame([encodeFrame({ progress: { spoolSeq: 1 } }), frame])).toThrow(
        /not a frame of one report/,
      );
  });
});
