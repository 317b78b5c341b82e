import { describe, expect, it } from 'vitest';
import { MAX_EVENT_DATA_JSON, MAX_REPORT_MESSAGE, normalizeEvent, normalizeProgress } from './reports.js';
import { checkResult, INVALID_RESULT, toPlain } from './results.js';

describe('checkResult', () => {
  it('turns a backup into the record the agent reports, with defaults', () => {
    expect(checkResult('backup', { externalId: 'b1', sizeBytes: 10.4 }, 'INCREMENT')).toEqual({
      ok: true,
      outputJson: '',
      backup: {
        externalId: 'b1',
        sizeBytes: 10,
        addedBytes: 0,
        mode: 'INCREMENT',
        parentExternalId: '',
        extraJson: '',
      },
    });
    expect(checkResult('backup', { externalId: 'b1', sizeBytes: 10, extra: { k: 1 } }, undefined)).toMatchObject({
      backup: { mode: 'FULL', addedBytes: 10, extraJson: '{"k":1}' },
    });
  });

  it.each([
    ['nothing', undefined, 'a backup must return an object'],
    ['no externalId', { sizeBytes: 1 }, 'the backup has no externalId'],
    ['an empty externalId', { externalId: '', sizeBytes: 1 }, 'the backup has no externalId'],
    ['a negative size', { externalId: 'b', sizeBytes: -1 }, 'the backup has no valid sizeBytes'],
    ['a size that is text', { externalId: 'b', sizeBytes: '10' }, 'the backup has no valid sizeBytes'],
  ])('refuses a backup result with %s', (_what, value, why) => {
    expect(checkResult('backup', value, 'FULL')).toEqual({
      ok: false,
      failure: { code: 'PLUGIN_CRASHED', message: `${INVALID_RESULT}: ${why}`, retryable: false },
    });
  });

  it('gives other operations their output as JSON, and refuses output JSON cannot carry', () => {
    expect(checkResult('list-offerings', [{ externalId: 'g', name: 'Gold' }], undefined)).toEqual({
      ok: true,
      outputJson: '[{"externalId":"g","name":"Gold"}]',
    });
    expect(checkResult('delete-backup', undefined, undefined)).toEqual({ ok: true, outputJson: 'null' });
    expect(checkResult('sync', { n: 1n }, undefined)).toMatchObject({ ok: false, failure: { code: 'PLUGIN_CRASHED' } });
  });
});

describe('toPlain', () => {
  it('copies what crosses a worker boundary as plain JSON', () => {
    const at = new Date(0);
    expect(toPlain({ at, gone: undefined, list: [1] })).toEqual({ at: at.toISOString(), list: [1] });
    expect(toPlain(undefined)).toBeNull();
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => toPlain(cyclic)).toThrow();
  });
});

describe('normalizeProgress and normalizeEvent', () => {
  it('bring reports into range, and say what they adjusted', () => {
    const notes: string[] = [];
    expect(
      normalizeProgress({ percent: 150, bytesDone: -3, message: 'x'.repeat(MAX_REPORT_MESSAGE + 5) }, notes),
    ).toEqual({
      percent: 100,
      bytesDone: 0,
      bytesTotal: 0,
      message: `${'x'.repeat(MAX_REPORT_MESSAGE - 1)}…`,
    });
    expect(notes).toHaveLength(2);
    expect(normalizeProgress({ percent: Number.NaN })).toMatchObject({ percent: 0 });
  });

  it('default an empty event type and drop oversized data', () => {
    const notes: string[] = [];
    const big = { blob: 'x'.repeat(MAX_EVENT_DATA_JSON) };
    expect(normalizeEvent({ type: '', message: 'hi', data: big }, notes)).toEqual({
      type: 'provider.message',
      message: 'hi',
      dataJson: '',
    });
    expect(notes[0]).toMatch(/dropped/);
    expect(normalizeEvent({ type: 'warning', message: 'm', data: { k: 1 } })).toEqual({
      type: 'warning',
      message: 'm',
      dataJson: '{"k":1}',
    });
  });
});
