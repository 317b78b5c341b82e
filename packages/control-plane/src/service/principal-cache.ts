import { createHash } from 'node:crypto';
import { elapsedMs } from '../clock.js';
import type { Principal } from '../domain/access.js';
import type { TenantRepository } from '../store/tenant-repository.js';

export interface PrincipalCacheOptions {
  tokens: Pick<TenantRepository, 'principalForToken' | 'authEpoch'>;
  /** Milliseconds elapsed, by which the bound counts (real elapsed time; a unit test passes its own). */
  elapsed?: () => number;
  /**
   * The bound: the token removal count is read again at most this long after the last read
   * began, so a token revoked on any replica is refused everywhere within it.
   */
  boundMs: number;
  /** Principals kept at most (the oldest cached goes first). */
  maxEntries?: number;
}

/**
 * Who a bearer token is, without a database read per request. A token's principal (token id,
 * tenant, role) never changes while the token exists; what can happen is that the token goes
 * (revoked, or a configured sp-admin token replaced). Every removal counts one in the database's
 * auth epoch, in the removing transaction. The cache reads that count again before it answers
 * once `boundMs` has passed since its last read began, and forgets every principal when the
 * count moved: a request that starts `boundMs` after a revocation committed, on any replica, is
 * answered from a read that began after the commit. A revocation through this replica is
 * forgotten at once. Unknown tokens are never cached (each is a database read, as before).
 *
 * @example
 * const principals = new PrincipalCache({ tokens: tenantRepository, boundMs: 1000 });
 * const p = await principals.principalForToken(bearer);
 */
export class PrincipalCache {
  private readonly byHash = new Map<string, Principal>();
  private epoch: number | undefined;
  /** When the last read of the epoch began (undefined: never read). */
  private checkedAt: number | undefined;
  private checking: Promise<void> | undefined;
  /** Moves on every forget: a lookup begun before one must not put back what was forgotten. */
  private generation = 0;
  private readonly maxEntries: number;

  constructor(private readonly opts: PrincipalCacheOptions) {
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  async principalForToken(token: string): Promise<Principal | undefined> {
    await this.fresh();
    const key = createHash('sha256').update(token).digest('base64');
    const cached = this.byHash.get(key);
    if (cached) return cached;
    const generation = this.generation;
    const principal = await this.opts.tokens.principalForToken(token);
    if (principal && generation === this.generation) {
      if (this.byHash.size >= this.maxEntries) this.byHash.delete(this.byHash.keys().next().value!);
      this.byHash.set(key, principal);
    }
    return principal;
  }

  /** Forgets every cached principal (a token was removed through this replica). */
  forget(): void {
    this.byHash.clear();
    this.generation++;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Reads the epoch again when the bound has passed (one read at a time, shared by the requests waiting on it). */
  private async fresh(): Promise<void> {
    if (this.checking) return this.checking;
    const now = (this.opts.elapsed ?? elapsedMs)();
    if (this.checkedAt !== undefined && now >= this.checkedAt && now - this.checkedAt < this.opts.boundMs) return;
    this.checking = (async () => {
      const epoch = await this.opts.tokens.authEpoch();
      // Only a read that succeeded counts; it counts from when it began.
      this.checkedAt = now;
      if (epoch !== this.epoch) {
        if (this.epoch !== undefined) this.forget();
        this.epoch = epoch;
      }
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }
}
