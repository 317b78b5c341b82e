import { ConflictError } from '../domain/errors.js';
import type { Principal, Role } from '../domain/access.js';
import type { Db } from './db.js';
import { hashSecret, newId, newSecret } from './ids.js';
import { decodeCursor, pageOf, type Page, type PageRequest } from './page.js';
import type { TenantRow } from './schema.js';

/** The service provider's own tenant, created on first start; sp-admin tokens belong to it. */
export const PROVIDER_TENANT_NAME = 'service-provider';

export class TenantRepository {
  constructor(private readonly db: Db) {}

  /** Creates the provider tenant if missing and returns its id (safe to race between replicas). */
  async ensureProviderTenant(now = Date.now()): Promise<string> {
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

  async create(name: string, now = Date.now()): Promise<TenantRow> {
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
  async createToken(tenantId: string, role: Role, name: string, now = Date.now()) {
    const token = newSecret('cairn');
    const row = { id: newId('tok', now), tenantId, role, name, tokenHash: hashSecret(token), createdAt: now };
    await this.db.insertInto('apiTokens').values(row).execute();
    return { id: row.id, tenantId, role, name, token };
  }

  /** Makes `token` a valid sp-admin token (CAIRN_ADMIN_TOKEN); idempotent. */
  async ensureAdminToken(tenantId: string, token: string, now = Date.now()): Promise<void> {
    const tokenHash = hashSecret(token);
    const found = await this.db
      .selectFrom('apiTokens')
      .select('id')
      .where('tokenHash', '=', tokenHash)
      .executeTakeFirst();
    if (found) return;
    await this.db
      .insertInto('apiTokens')
      .values({
        id: newId('tok', now),
        tenantId,
        role: 'sp-admin',
        name: 'CAIRN_ADMIN_TOKEN',
        tokenHash,
        createdAt: now,
      })
      .execute();
  }

  async hasSpAdminToken(): Promise<boolean> {
    const row = await this.db.selectFrom('apiTokens').select('id').where('role', '=', 'sp-admin').executeTakeFirst();
    return row !== undefined;
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
