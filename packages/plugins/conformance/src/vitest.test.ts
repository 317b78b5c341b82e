import { describe, expect, it } from 'vitest';
import type { ConformanceReport } from './run.js';
import { settleCheck } from './vitest.js';

const report: ConformanceReport = {
  ok: false,
  counts: { pass: 1, fail: 1, skip: 1 },
  checks: [
    { name: 'backup', status: 'pass', reason: 'FULL b1', durationMs: 1 },
    { name: 'cancel', status: 'fail', reason: 'did not stop within 300 ms after cancel', durationMs: 1 },
    { name: 'delete', status: 'skip', reason: 'the plugin does not declare delete-backup', durationMs: 0 },
  ],
};

describe('settleCheck (one vitest test a check)', () => {
  it('passes a passed check, skips a skipped one with its reason, fails a failed one with its reason', () => {
    const skipped: string[] = [];
    settleCheck(report, 'backup', (note) => skipped.push(note));
    settleCheck(report, 'delete', (note) => skipped.push(note));
    expect(skipped).toEqual(['the plugin does not declare delete-backup']);
    expect(() => settleCheck(report, 'cancel', () => undefined)).toThrow(
      'cancel: did not stop within 300 ms after cancel',
    );
  });

  it('fails a check the run never reached, or a run that never ended', () => {
    expect(() => settleCheck(report, 'manifest', () => undefined)).toThrow(
      'the conformance run did not reach manifest',
    );
    expect(() => settleCheck(undefined, 'backup', () => undefined)).toThrow('did not reach backup');
  });
});
