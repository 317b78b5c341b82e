import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FailureCodes, isAbortError, isPluginError, PluginError } from './errors.js';

describe('PluginError', () => {
  it('carries its code, message, retryable flag and cause', () => {
    const cause = new Error('socket closed');
    const err = new PluginError('REPO_LOCKED', 'locked', { retryable: true, cause });
    expect(err).toMatchObject({ name: 'PluginError', code: 'REPO_LOCKED', message: 'locked', retryable: true });
    expect(err.cause).toBe(cause);
    expect(new PluginError('X', 'm').retryable).toBe(false);
  });
});

describe('isPluginError', () => {
  it('recognises a PluginError from another copy of the SDK by its name and code', () => {
    // What a second copy's PluginError (or one rebuilt after crossing a thread) looks like.
    const foreign = Object.assign(new Error('locked'), { name: 'PluginError', code: 'REPO_LOCKED' });
    expect(isPluginError(foreign)).toBe(true);
    expect(isPluginError({ name: 'PluginError', code: 'X', message: 'plain object' })).toBe(true);
    expect(isPluginError(new PluginError('X', 'm'))).toBe(true);
  });

  it.each([
    ['an ordinary Error', new Error('boom')],
    ['a PluginError-named error without a code', Object.assign(new Error('m'), { name: 'PluginError' })],
    ['a code that is not a string', { name: 'PluginError', code: 42, message: 'm' }],
    ['another error name with a code', Object.assign(new Error('m'), { code: 'ENOENT' })],
    ['a string', 'PluginError'],
    ['null', null],
  ])('refuses %s', (_what, value) => {
    expect(isPluginError(value)).toBe(false);
  });
});

describe('isAbortError', () => {
  it('recognises an aborted operation and a CANCELLED PluginError', async () => {
    const controller = new AbortController();
    const pending = sleep(60_000, undefined, { signal: controller.signal });
    controller.abort();
    const rejection: unknown = await pending.catch((err: unknown) => err);
    expect(isAbortError(rejection)).toBe(true);
    expect(isAbortError(new PluginError(FailureCodes.CANCELLED, 'stop'))).toBe(true);
  });

  it('refuses other failures', () => {
    expect(isAbortError(new PluginError('REPO_LOCKED', 'locked'))).toBe(false);
    expect(isAbortError(new Error('aborted'))).toBe(false);
    expect(isAbortError(undefined)).toBe(false);
  });
});
