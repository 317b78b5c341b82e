import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, FAILURE_CODES, FailureCodes, OPERATIONS, REJECT_REASONS, RejectReasons } from './index.js';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Imports `spec` (built) in a fresh Node process whose resolver refuses protobufjs, as seen from
 * the SDK's own package; returns what the import did.
 */
function importWithoutCodec(spec: string): string {
  const hook = `export async function resolve(s, c, next) {
    if (s === 'protobufjs' || s.startsWith('protobufjs/')) throw new Error('protobufjs loaded (' + s + ')');
    return next(s, c);
  }`;
  const script = `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    try { await import(${JSON.stringify(spec)}); console.log('ok'); } catch (e) { console.log(e.message); }`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: packageDir,
    encoding: 'utf8',
  }).trim();
}

describe('the wire vocabulary in the SDK', () => {
  it.each(['@cairn/plugin-sdk', '@cairn/plugin-sdk/host', '@cairn/plugin-sdk/testing'])(
    '%s loads without the protobuf codec',
    (spec) => {
      expect(importWithoutCodec(spec)).toBe('ok');
    },
  );

  it('the probe bites: the codec itself does load protobufjs', () => {
    expect(importWithoutCodec('@cairn/proto')).toMatch(/^protobufjs loaded/);
  });

  it('names every word by its own value, once', () => {
    for (const words of [OPERATIONS, REJECT_REASONS, FAILURE_CODES]) expect(new Set(words).size).toBe(words.length);
    expect(Object.entries(FailureCodes).every(([k, v]) => k === v)).toBe(true);
    expect(Object.values(RejectReasons)).toEqual(REJECT_REASONS);
  });

  it('keeps the deprecated ErrorCodes on the same wire values', () => {
    expect(ErrorCodes).toEqual({
      CANCELLED: 'CANCELLED',
      TIMEOUT: 'PLUGIN_TIMEOUT',
      PLUGIN_CRASHED: 'PLUGIN_CRASHED',
      UNSUPPORTED_OPERATION: 'UNSUPPORTED_OPERATION',
      INTERRUPTED: 'AGENT_INTERRUPTED',
    });
  });
});
