import { describe, expect, it } from 'vitest';
import { parsePreflight, PREFLIGHT_LIMITS } from './preflight.js';

describe('parsePreflight', () => {
  it('reads the checks the agent reported; ok is every check ok', () => {
    const output = JSON.stringify({
      ok: false,
      checks: [
        { name: 'a', ok: true, message: 'fine' },
        { name: 'b', ok: false, message: 'locked', advice: 'unlock it' },
      ],
    });
    expect(parsePreflight(output)).toEqual({
      ok: true,
      report: {
        ok: false,
        checks: [
          { name: 'a', ok: true, message: 'fine' },
          { name: 'b', ok: false, message: 'locked', advice: 'unlock it' },
        ],
      },
    });
  });

  it('reads an answer of {ok, message} alone as one check named preflight', () => {
    expect(parsePreflight('{"ok":false,"message":"down"}')).toEqual({
      ok: true,
      report: { ok: false, checks: [{ name: 'preflight', ok: false, message: 'down' }] },
    });
    expect(parsePreflight('{"ok":true,"checks":[]}')).toMatchObject({ report: { checks: [{ message: 'passed' }] } });
  });

  const many = Array.from({ length: PREFLIGHT_LIMITS.checks + 1 }, (_, i) => ({
    name: `c${i}`,
    ok: true,
    message: '',
  }));
  it.each([
    ['no output', null, 'the answer is not an object'],
    ['output that is not JSON', '{', 'the answer is not JSON'],
    ['a truncation note', '{"cairnTruncated":true,"reason":"too big"}', 'the answer is too large to store: too big'],
    ['neither checks nor ok', '{"message":"hi"}', 'the answer has neither checks nor a boolean ok'],
    ['too many checks', JSON.stringify({ checks: many }), 'the checks are not a list of at most 50'],
    ['a bad check', '{"checks":[{"name":"a","ok":"yes","message":""}]}', 'check 0 is not {name, ok, message, advice?}'],
  ])('gives no report for %s', (_what, output, reason) => {
    expect(parsePreflight(output)).toEqual({ ok: false, reason });
  });
});
