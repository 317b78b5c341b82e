import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JSON_MAX_BYTES, JSON_MAX_DEPTH, jsonProblem, utf8Length } from './json-limits.js';
import { codePoints, nameProblem, normaliseName } from './names.js';

const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });

describe('free-form JSON limits', () => {
  it('counts UTF-8 bytes and code points as Buffer and the string iterator do', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(utf8Length(s)).toBe(Buffer.byteLength(s, 'utf8'));
        expect(codePoints(s)).toBe([...s].length);
      }),
    );
  });

  it('takes 32 levels and refuses 33, however the containers are mixed', () => {
    expect(jsonProblem(nested(JSON_MAX_DEPTH))).toBeUndefined();
    expect(jsonProblem(nested(JSON_MAX_DEPTH + 1))?.message).toMatch(/deeper than 32/);
    let mixed: unknown = 'leaf';
    for (let i = 0; i < JSON_MAX_DEPTH; i++) mixed = i % 2 ? [mixed] : { k: mixed };
    expect(jsonProblem(mixed)).toBeUndefined();
    expect(jsonProblem([mixed])?.path).toEqual([]);
    // Judged without recursion: a depth that would overflow a recursive walk is just refused.
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(jsonProblem(deep)?.message).toMatch(/deeper than 32/);
  });

  it('refuses one byte over the size limit, counted in UTF-8', () => {
    const pad = '{"s":""}'.length;
    expect(jsonProblem({ s: 'x'.repeat(JSON_MAX_BYTES - pad) })).toBeUndefined();
    expect(jsonProblem({ s: 'x'.repeat(JSON_MAX_BYTES - pad + 1) })?.message).toMatch(/16385 bytes.*16384/);
    expect(jsonProblem({ s: 'é'.repeat((JSON_MAX_BYTES - pad) / 2 + 1) })).toBeDefined();
  });

  it('names the path of a prototype key or a lone surrogate', () => {
    expect(jsonProblem(JSON.parse('{"a":[{"__proto__":{}}]}'))?.path).toEqual(['a', 0, '__proto__']);
    expect(jsonProblem({ constructor: 1 })?.path).toEqual(['constructor']);
    expect(jsonProblem({ x: { prototype: 1 } })?.path).toEqual(['x', 'prototype']);
    expect(jsonProblem({ x: ['ok', 'a\ud800'] })?.path).toEqual(['x', 1]);
    expect(jsonProblem({ 'constructor-ish': 'fine', proto: 'fine' })).toBeUndefined();
  });
});

describe('names', () => {
  it('stores the NFC form, trimmed', () => {
    expect(normaliseName('  Cafe\u0301 ')).toBe('Caf\u00e9');
  });

  it('refuses invisible, control and ill-formed names, and counts code points against 200', () => {
    for (const bad of [
      '',
      '\u200b',
      '\u200c\u200d\u2060\ufeff',
      '\u3164',
      '\u0301',
      'a\u0000b',
      'a\u0085b',
      '\ud83d',
    ]) {
      expect(nameProblem(normaliseName(bad)), JSON.stringify(bad)).toBeDefined();
    }
    for (const good of ['acme', 'Café', '👨‍👩‍👧', 'a b', 'ア', '😀'.repeat(200)]) {
      expect(nameProblem(normaliseName(good)), good).toBeUndefined();
    }
    expect(nameProblem('é'.repeat(201))).toMatch(/201 characters; the limit is 200/);
  });
});
