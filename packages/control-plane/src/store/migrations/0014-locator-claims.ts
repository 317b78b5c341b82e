import { sql, type Kysely } from 'kysely';

/*
 * Locators are claims on the SP's infrastructure (domain/locator-claims.ts).
 * providers.tenant_locators: who may claim locators through the connection (`sp-only`,
 * `granted-roots`, `any`). provider_tenant_roots: the host roots a tenant was granted on a
 * connection, as a JSON list. instances.locator_claim: whether an sp-admin (`sp`) or the tenant
 * (`tenant`) set the locator. Instances that tenants created before this migration count as the
 * tenant's claims: they are judged like new ones.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('providers')
    .addColumn('tenant_locators', 'varchar(16)', (c) => c.notNull().defaultTo('sp-only'))
    .execute();
  await db.schema
    .createTable('provider_tenant_roots')
    .addColumn('provider_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('roots', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('provider_tenant_roots_pk', ['provider_id', 'tenant_id'])
    .execute();
  await db.schema
    .alterTable('instances')
    .addColumn('locator_claim', 'varchar(8)', (c) => c.notNull().defaultTo('sp'))
    .execute();
  await sql`update instances set locator_claim = 'tenant'
    where tenant_id not in (select id from tenants where name = 'service-provider')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('locator_claim').execute();
  await db.schema.dropTable('provider_tenant_roots').execute();
  await db.schema.alterTable('providers').dropColumn('tenant_locators').execute();
}
