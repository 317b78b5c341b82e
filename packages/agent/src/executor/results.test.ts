import { describe, expect, it } from 'vitest';
import { fitResult, resultOutcome } from './results.js';

describe('resultOutcome', () => {
  it('describes a backup with its metadata', () => {
    const out = resultOutcome(
      'backup',
      {
        ok: true,
        value: { externalId: 'b1', sizeBytes: 100, mode: 'INCREMENT', parentExternalId: 'b0', extra: { k: 1 } },
      },
      'FULL',
    );
    expect(out).toEqual({
      ok: {
        backup: {
          externalId: 'b1',
          sizeBytes: 100,
          addedBytes: 0,
          mode: 'INCREMENT',
          parentExternalId: 'b0',
          extraJson: '{"k":1}',
        },
        outputJson: '',
      },
    });
  });

  it('counts a full backup without addedBytes as all new', () => {
    const out = resultOutcome('backup', { ok: true, value: { externalId: 'b1', sizeBytes: 100 } }, 'FULL');
    expect(out).toMatchObject({ ok: { backup: { addedBytes: 100, mode: 'FULL' } } });
  });

  it('fails a backup result without an external id instead of reporting success', () => {
    expect(resultOutcome('backup', { ok: true, value: { sizeBytes: 1 } }, 'FULL')).toMatchObject({
      error: { code: 'PLUGIN_CRASHED' },
    });
    expect(resultOutcome('backup', { ok: true, value: undefined }, 'FULL')).toMatchObject({
      error: { code: 'PLUGIN_CRASHED' },
    });
  });

  it("serialises other operations' output, and void as null", () => {
    expect(resultOutcome('list-offerings', { ok: true, value: [{ externalId: 'g' }] }, undefined)).toEqual({
      ok: { outputJson: '[{"externalId":"g"}]' },
    });
    expect(resultOutcome('delete-backup', { ok: true, value: undefined }, undefined)).toEqual({
      ok: { outputJson: 'null' },
    });
  });

  it('fails output that cannot be serialised', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(resultOutcome('sync', { ok: true, value: cyclic }, undefined)).toMatchObject({
      error: { code: 'PLUGIN_CRASHED' },
    });
  });

  it('passes failures through', () => {
    expect(
      resultOutcome('backup', { ok: false, failure: { code: 'CANCELLED', message: 'm', retryable: false } }, 'FULL'),
    ).toEqual({
      error: { code: 'CANCELLED', message: 'm', retryable: false },
    });
  });

  it('replaces a result too large for one frame with RESULT_TOO_LARGE', () => {
    const small = resultOutcome('sync', { ok: true, value: ['a'] }, undefined);
    expect(fitResult(small, 64 * 1024)).toBe(small);
    const big = resultOutcome('sync', { ok: true, value: 'x'.repeat(100 * 1024) }, undefined);
    expect(fitResult(big, 64 * 1024)).toMatchObject({ error: { code: 'RESULT_TOO_LARGE', retryable: false } });
  });
});
