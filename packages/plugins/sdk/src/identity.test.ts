import { describe, expect, it } from 'vitest';
import {
  checkRepositoryIdentity,
  REPOSITORY_CHANGED,
  REPOSITORY_IDENTITY_EVENT,
  REPOSITORY_NOT_FOUND,
  reportIdentity,
} from './index.js';
import type { ProviderConnection, TaskContext, TaskEvent } from './provider.js';

/** A task context that keeps the events it is given (the rest is never called here). */
function recording(): { ctx: TaskContext; events: TaskEvent[] } {
  const events: TaskEvent[] = [];
  return { ctx: { event: (e: TaskEvent) => events.push(e) } as unknown as TaskContext, events };
}

const connection = (identity?: string): ProviderConnection => ({
  endpoint: '/srv/repo',
  config: {},
  credentials: {},
  ...(identity === undefined ? {} : { identity }),
});

describe('repository identity', () => {
  it('reportIdentity emits the reserved event with the identity as data', () => {
    const { ctx, events } = recording();
    reportIdentity(ctx, 'abc');
    expect(events).toEqual([
      { type: 'repository.identity', message: 'repository identity abc', data: { identity: 'abc' } },
    ]);
    expect(REPOSITORY_IDENTITY_EVENT).toBe('repository.identity');
    // The code of a missing repository, which the control plane reads on a sync (the wire's word).
    expect(REPOSITORY_NOT_FOUND).toBe('REPOSITORY_NOT_FOUND');
  });

  it('reports the identity found through a connection that records none (or an empty one)', () => {
    for (const c of [connection(), connection('')]) {
      const { ctx, events } = recording();
      checkRepositoryIdentity(c, ctx, 'abc');
      expect(events.map((e) => e.data)).toEqual([{ identity: 'abc' }]);
    }
  });

  it('passes quietly through a connection that records the same identity', () => {
    const { ctx, events } = recording();
    checkRepositoryIdentity(connection('abc'), ctx, 'abc');
    expect(events).toEqual([]);
  });

  it('fails REPOSITORY_CHANGED, naming both identities, through a connection that records another', () => {
    const { ctx, events } = recording();
    expect(() => checkRepositoryIdentity(connection('abc'), ctx, 'def', 'repository /srv/repo')).toThrow(
      expect.objectContaining({
        name: 'PluginError',
        code: REPOSITORY_CHANGED,
        message: expect.stringMatching(/^repository \/srv\/repo is repository def, not abc, /),
      }),
    );
    expect(events).toEqual([]);
  });

  it('refuses to check an identity that is not a non-empty string of at most 255 characters', () => {
    const { ctx } = recording();
    for (const found of ['', 'x'.repeat(256), 42 as unknown as string])
      expect(() => checkRepositoryIdentity(connection(), ctx, found)).toThrow(TypeError);
  });
});
