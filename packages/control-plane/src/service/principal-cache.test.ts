import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { systemClock } from '../clock.js';
import { TenantRepository } from '../store/tenant-repository.js';
import { storeFixture } from '../testing/store-fixture.js';
import { PrincipalCache } from './principal-cache.js';

describe.each(backends)('the principal cache (%s)', (backend) => {
  const f = storeFixture(backend);

  /** One replica: its own repository on the shared database, counting its reads, and its own cache and elapsed time. */
  function replica(boundMs = 1000) {
    const repo = new TenantRepository(f.store.db, systemClock);
    const reads = { tokens: 0, epochs: 0 };
    let at = 0;
    const cache = new PrincipalCache({
      tokens: {
        principalForToken: (t) => (reads.tokens++, repo.principalForToken(t)),
        authEpoch: () => (reads.epochs++, repo.authEpoch()),
      },
      boundMs,
      elapsed: () => at,
    });
    return { repo, cache, reads, advance: (ms: number) => (at += ms) };
  }

  async function tokenOf(name: string) {
    const tenants = f.repos.tenants;
    const tenant = await tenants.create(`pc-${name}-${backend}`);
    return tenants.createToken(tenant.id, 'tenant-user', name);
  }

  it('answers a token read once from memory until the bound passes', async () => {
    const r = replica();
    const tok = await tokenOf('hot');
    for (let i = 0; i < 100; i++) {
      expect(await r.cache.principalForToken(tok.token)).toMatchObject({ tokenId: tok.id, tenantId: tok.tenantId });
      r.advance(5); // 500 ms in all: within the bound
    }
    expect(r.reads).toEqual({ tokens: 1, epochs: 1 });
    r.advance(600);
    await r.cache.principalForToken(tok.token);
    // The epoch is read again; it did not move, so the principal stays cached.
    expect(r.reads).toEqual({ tokens: 1, epochs: 2 });
  });

  it('refuses on another replica a token revoked on one, once the bound has passed, and not before', async () => {
    const a = replica();
    const b = replica();
    const tok = await tokenOf('revoked');
    expect(await a.cache.principalForToken(tok.token)).toBeDefined();
    expect(await b.cache.principalForToken(tok.token)).toBeDefined();
    expect(await a.repo.revokeToken(tok.tenantId, tok.id)).toBe(true);
    // Within the bound replica B may still answer from memory: this is the staleness the bound allows.
    b.advance(999);
    expect(await b.cache.principalForToken(tok.token)).toBeDefined();
    b.advance(1);
    expect(await b.cache.principalForToken(tok.token)).toBeUndefined();
    expect(b.cache.size).toBe(0);
  });

  it('refuses at once, on the replica that revoked it, once told to forget', async () => {
    const a = replica();
    const tok = await tokenOf('forgotten');
    expect(await a.cache.principalForToken(tok.token)).toBeDefined();
    await a.repo.revokeToken(tok.tenantId, tok.id);
    a.cache.forget();
    expect(await a.cache.principalForToken(tok.token)).toBeUndefined();
  });

  it('counts a configured admin token replaced at a restart as a removal', async () => {
    const a = replica();
    const tenants = f.repos.tenants;
    const provider = await tenants.ensureProviderTenant();
    await tenants.ensureAdminToken(provider, 'cairn-first-admin-token-value');
    expect(await a.cache.principalForToken('cairn-first-admin-token-value')).toMatchObject({ role: 'sp-admin' });
    const before = await a.repo.authEpoch();
    // Another replica starts with a new CAIRN_ADMIN_TOKEN: the old one is retired.
    await tenants.ensureAdminToken(provider, 'cairn-second-admin-token-value');
    expect(await a.repo.authEpoch()).toBe(before + 1);
    a.advance(1000);
    expect(await a.cache.principalForToken('cairn-first-admin-token-value')).toBeUndefined();
    expect(await a.cache.principalForToken('cairn-second-admin-token-value')).toMatchObject({ role: 'sp-admin' });
  });

  it('never caches an unknown token, and keeps at most its size', async () => {
    const r = replica();
    for (let i = 0; i < 3; i++) expect(await r.cache.principalForToken('cairn-nobody')).toBeUndefined();
    expect(r.reads.tokens).toBe(3);
    const small = new PrincipalCache({ tokens: r.repo, boundMs: 1000, maxEntries: 2, elapsed: () => 0 });
    const toks = [await tokenOf('s1'), await tokenOf('s2'), await tokenOf('s3')];
    for (const t of toks) await small.principalForToken(t.token);
    expect(small.size).toBe(2);
  });

  it('does not put back a principal whose lookup began before a forget', async () => {
    const tok = await tokenOf('racing');
    const repo = new TenantRepository(f.store.db, systemClock);
    let release!: () => void;
    let readDone!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const read = new Promise<void>((resolve) => (readDone = resolve));
    const cache = new PrincipalCache({
      tokens: {
        principalForToken: async (t) => {
          const p = await repo.principalForToken(t);
          readDone();
          await gate; // the token is read as it was; the revocation commits meanwhile
          return p;
        },
        authEpoch: () => repo.authEpoch(),
      },
      boundMs: 60_000,
      elapsed: () => 0,
    });
    const lookup = cache.principalForToken(tok.token);
    await read;
    await repo.revokeToken(tok.tenantId, tok.id);
    cache.forget();
    release();
    expect(await lookup).toBeDefined(); // answered as read: the request began before the revocation
    expect(cache.size).toBe(0);
  });
});
