import { sql, type Transaction } from 'kysely';
import { ConflictError } from '../domain/errors.js';
import type { Principal, Role } from '../domain/access.js';
import { transact, type Db } from './db.js';
import type { Clock } from '../clock.js';
import { hashSecret, newId, newSecret } from './ids.js';
import { decodeCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { ApiTokenRow, Database, TenantRow } from './schema.js';
import { template } from './compiled.js';

export type TokenInfo = Omit<ApiTokenRow, 'tokenHash'>;

/** The service provider's own tenant, created on first start; sp-admin tokens belong to it. */
export const PROVIDER_TENANT_NAME = 'service-provider';

/** The token epoch every replica rereads at most once per CAIRN_AUTH_CACHE_MS. */
const AUTH_EPOCH = template((db) => db.selectFrom('authEpoch').select('epoch').where('id', '=', 1));

export class TenantRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Creates the provider tenant if missing and returns its id (safe to race between replicas). */
  async ensureProviderTenant(now = this.clock.now()): Promise<string> {
    const found = await this.db
      .selectFrom('tenants')
      .select('id')
      .where('name', '=', PROVIDER_TENANT_NAME)
      .executeTakeFirst();
    if (found) return found.id;
    try {
      await this.db
        .insertInto('tenants')
        .values({ id: newId('ten', now), name: PROVIDER_TENANT_NAME, createdAt: now })
        .execute();
    } catch {
      // Another replica won the race; read its row below.
    }
    const row = await this.db
      .selectFrom('tenants')
      .select('id')
      .where('name', '=', PROVIDER_TENANT_NAME)
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async create(name: string, now = this.clock.now()): Promise<TenantRow> {
    const exists = await this.db.selectFrom('tenants').select('id').where('name', '=', name).executeTakeFirst();
    if (exists) throw new ConflictError(`a tenant named "${name}" already exists`, 'tenant_exists');
    const row = { id: newId('ten', now), name, createdAt: now };
    await this.db.insertInto('tenants').values(row).execute();
    return row;
  }

  async get(id: string): Promise<TenantRow | undefined> {
    return this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(page: PageRequest): Promise<Page<TenantRow>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('tenants')
      .selectAll()
      .orderBy('id')
      .limit(page.limit + 1);
    if (after) q = q.where('id', '>', after);
    return pageOf(await q.execute(), page.limit);
  }

  /** Issues a token; the secret is returned once and stored only hashed. */
  async createToken(tenantId: string, role: Role, name: string, now = this.clock.now()) {
    const token = newSecret('cairn');
    const row = {
      id: newId('tok', now),
      tenantId,
      role,
      name,
      tokenHash: hashSecret(token),
      source: 'api',
      createdAt: now,
    };
    await this.db.insertInto('apiTokens').values(row).execute();
    return { id: row.id, tenantId, role, name, token };
  }

  /**
   * Makes `token` the configured sp-admin token (CAIRN_ADMIN_TOKEN): a new value replaces the
   * one configured before, so a rotated value retires the old at the next start. Tokens minted
   * through the API are never touched. Idempotent, and safe when replicas start at once.
   */
  async ensureAdminToken(tenantId: string, token: string, now = this.clock.now()): Promise<void> {
    const tokenHash = hashSecret(token);
    await transact(this.db, async (trx) => {
      const retired = await trx
        .deleteFrom('apiTokens')
        .where('source', '=', 'config')
        .where('tokenHash', '!=', tokenHash)
        .executeTakeFirst();
      if (Number(retired.numDeletedRows) > 0) await bumpAuthEpoch(trx);
      const found = await trx
        .selectFrom('apiTokens')
        .select('id')
        .where('tokenHash', '=', tokenHash)
        .executeTakeFirst();
      if (found) return;
      await trx
        .insertInto('apiTokens')
        .values({
          id: newId('tok', now),
          tenantId,
          role: 'sp-admin',
          name: 'CAIRN_ADMIN_TOKEN',
          tokenHash,
          source: 'config',
          createdAt: now,
        })
        .execute();
    }).catch(async (err: unknown) => {
      // Another replica inserted the same value first (unique token_hash): that is the outcome wanted.
      const present = await this.db
        .selectFrom('apiTokens')
        .select('id')
        .where('tokenHash', '=', tokenHash)
        .executeTakeFirst();
      if (!present) throw err;
    });
  }

  /** A tenant's tokens, never their secrets or hashes. */
  async listTokens(tenantId: string, page: PageRequest): Promise<Page<TokenInfo>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('apiTokens')
      .select(['id', 'tenantId', 'role', 'name', 'source', 'createdAt'])
      .where('tenantId', '=', tenantId)
      .orderBy('id')
      .limit(page.limit + 1);
    if (after) q = q.where('id', '>', after);
    return pageOf(await q.execute(), page.limit);
  }

  /**
   * Deletes a token of `tenantId`; false when it has no such token. The last sp-admin token is
   * kept (409): without one nobody could run the provider's API until an operator restarts with
   * CAIRN_ADMIN_TOKEN. The tenant's row is locked first (before anything is read, so MySQL's
   * snapshot starts after the lock), so two racing deletes of the last two cannot both pass the
   * count; SQLite runs one write transaction at a time anyway.
   */
  async revokeToken(tenantId: string, tokenId: string): Promise<boolean> {
    return transact(this.db, async (trx) => {
      await trx
        .updateTable('tenants')
        .set({ name: sql<string>`name` })
        .where('id', '=', tenantId)
        .execute();
      const token = await trx
        .selectFrom('apiTokens')
        .select(['id', 'role'])
        .where('id', '=', tokenId)
        .where('tenantId', '=', tenantId)
        .executeTakeFirst();
      if (!token) return false;
      if (token.role === 'sp-admin') {
        const admins = await trx
          .selectFrom('apiTokens')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('role', '=', 'sp-admin')
          .executeTakeFirstOrThrow();
        if (Number(admins.n) <= 1) {
          throw new ConflictError(
            'this is the last sp-admin token; issue another sp-admin token before revoking it',
            'last_admin_token',
          );
        }
      }
      const r = await trx.deleteFrom('apiTokens').where('id', '=', tokenId).executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) return false;
      await bumpAuthEpoch(trx);
      return true;
    });
  }

  async hasSpAdminToken(): Promise<boolean> {
    const row = await this.db.selectFrom('apiTokens').select('id').where('role', '=', 'sp-admin').executeTakeFirst();
    return row !== undefined;
  }

  /** How many token removals there have been: a cache of principals is stale once it moved. */
  async authEpoch(): Promise<number> {
    const row = await AUTH_EPOCH.first(this.db, {});
    if (!row) throw new Error('the auth_epoch row is missing (migration 0025)');
    return Number(row.epoch);
  }

  async principalForToken(token: string): Promise<Principal | undefined> {
    const row = await this.db
      .selectFrom('apiTokens')
      .select(['id', 'tenantId', 'role'])
      .where('tokenHash', '=', hashSecret(token))
      .executeTakeFirst();
    return row ? { tokenId: row.id, tenantId: row.tenantId, role: row.role as Role } : undefined;
  }
}

/** Counted in the transaction that removes a token: replicas forget their cached principals. */
async function bumpAuthEpoch(trx: Transaction<Database>): Promise<void> {
  await trx
    .updateTable('authEpoch')
    .set((eb) => ({ epoch: eb('epoch', '+', 1) }))
    .where('id', '=', 1)
    .execute();
}
