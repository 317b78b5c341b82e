import { describe, expect, it } from 'vitest';
import { MAX_EVENT_DATA_JSON, MAX_REPORT_MESSAGE, normalizeEvent, normalizeProgress } from './reports.js';
import { MAX_CHECK_NAME, MAX_CHECK_TEXT, MAX_PREFLIGHT_CHECKS, secretStrings, SYNTHETIC_CHECK } from './preflight.js';
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

describe('checkResult of a preflight', () => {
  const refused = (why: string) => ({
    ok: false,
    failure: { code: 'PLUGIN_CRASHED', message: `${INVALID_RESULT}: ${why}`, retryable: false },
  });
  const output = (value: unknown, credentials?: unknown) => {
    const checked = checkResult('preflight', value, undefined, { credentials });
    if (!checked.ok) throw new Error(checked.failure.message);
    return JSON.parse(checked.outputJson) as unknown;
  };

  it('reports the checks, ok when every check passed; advice only where given', () => {
    expect(
      output({
        ok: false,
        checks: [
          { name: ' store-writable ', ok: true, message: 'writable', advice: '' },
          { name: 'config-valid', ok: false, message: 'steps is 0', advice: 'set steps >= 1' },
        ],
      }),
    ).toEqual({
      ok: false,
      checks: [
        { name: 'store-writable', ok: true, message: 'writable' },
        { name: 'config-valid', ok: false, message: 'steps is 0', advice: 'set steps >= 1' },
      ],
    });
    // ok may be left to the checks.
    expect(output({ checks: [{ name: 'a', ok: true, message: '' }] })).toEqual({
      ok: true,
      checks: [{ name: 'a', ok: true, message: '' }],
    });
  });

  it('makes an answer without checks one check named preflight', () => {
    expect(output({ ok: true })).toEqual({
      ok: true,
      checks: [{ name: SYNTHETIC_CHECK, ok: true, message: 'passed' }],
    });
    expect(output({ ok: false, message: 'no route to host', checks: [] })).toEqual({
      ok: false,
      checks: [{ name: 'preflight', ok: false, message: 'no route to host' }],
    });
  });

  it('cuts long messages and advice, and blanks every credential in them', () => {
    const out = output(
      {
        ok: false,
        checks: [
          { name: 'login', ok: false, message: 'x'.repeat(MAX_CHECK_TEXT + 9), advice: 'password s3cret-pw is wrong' },
        ],
      },
      { user: 'bob', nested: { password: 's3cret-pw' } },
    ) as { checks: { message: string; advice: string }[] };
    expect(out.checks[0]!.message).toBe(`${'x'.repeat(MAX_CHECK_TEXT - 1)}…`);
    // 'bob' is too short to be blanked: it would blank ordinary words.
    expect(out.checks[0]!.advice).toBe('password [redacted] is wrong');
    expect(secretStrings({ a: 'abcd', b: ['abcdef', 'abc'], c: 1 })).toEqual(['abcdef', 'abcd']);
  });

  const many = Array.from({ length: MAX_PREFLIGHT_CHECKS + 1 }, (_, i) => ({ name: `c${i}`, ok: true, message: '' }));
  const fat = Array.from({ length: MAX_PREFLIGHT_CHECKS }, (_, i) => ({
    name: `c${i}`,
    ok: true,
    message: '€'.repeat(MAX_CHECK_TEXT),
  }));
  it.each([
    ['nothing', undefined, 'a preflight must return an object'],
    ['a list', [], 'a preflight must return an object'],
    ['ok as text', { ok: 'yes' }, 'the preflight ok is not a boolean'],
    ['no ok and no checks', { message: 'hi' }, 'a preflight without checks has no boolean ok'],
    ['a message that is a number', { ok: true, message: 1 }, 'the preflight message is not a string'],
    ['checks that are an object', { ok: true, checks: {} }, 'the preflight checks are not an array'],
    ['too many checks', { checks: many }, `the preflight has 51 checks, more than ${MAX_PREFLIGHT_CHECKS}`],
    ['a check that is text', { checks: ['fine'] }, 'check 0 is not an object'],
    [
      'a nameless check',
      { checks: [{ name: ' ', ok: true, message: '' }] },
      'check 0 has no name (a non-empty string)',
    ],
    [
      'a long name',
      { checks: [{ name: 'n'.repeat(MAX_CHECK_NAME + 1), ok: true, message: '' }] },
      `check 0 has a name of ${MAX_CHECK_NAME + 1} characters, more than ${MAX_CHECK_NAME}`,
    ],
    ['a check without ok', { checks: [{ name: 'a', message: '' }] }, 'check 0 (a) has no boolean ok'],
    ['a check without message', { checks: [{ name: 'a', ok: true }] }, 'check 0 (a) has no message (a string)'],
    [
      'advice that is a list',
      { checks: [{ name: 'a', ok: false, message: '', advice: ['x'] }] },
      'check 0 (a) has an advice that is not a string',
    ],
    [
      'a repeated name',
      {
        checks: [
          { name: 'a', ok: true, message: '' },
          { name: 'a', ok: true, message: '' },
        ],
      },
      'check 1 repeats the name a',
    ],
    [
      'ok true with a failed check',
      {
        ok: true,
        checks: [
          { name: 'a', ok: true, message: '' },
          { name: 'b', ok: false, message: '' },
        ],
      },
      'ok is true, but check 1 (b) failed',
    ],
    [
      'ok false with every check passed',
      { ok: false, checks: [{ name: 'a', ok: true, message: '' }] },
      'ok is false, but every check passed',
    ],
    ['checks too large as a whole', { checks: fat }, /^the preflight checks take \d+ bytes of JSON, more than 50000$/],
  ])('refuses a preflight with %s', (_what, value, why) => {
    const checked = checkResult('preflight', value, undefined);
    if (typeof why === 'string') expect(checked).toEqual(refused(why));
    else {
      expect(checked).toMatchObject({ ok: false, failure: { code: 'PLUGIN_CRASHED' } });
      expect((checked as { failure: { message: string } }).failure.message.slice(INVALID_RESULT.length + 2)).toMatch(
        why,
      );
    }
  });
});
