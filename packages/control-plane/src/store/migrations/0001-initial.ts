import type { Kysely } from 'kysely';

/*
 * Times are epoch milliseconds in BIGINT columns and JSON lives in TEXT columns, so the same
 * schema means the same thing on SQLite and MySQL. Ids are strings with a type prefix.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('role', 'varchar(32)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('agent_enrollments')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('agent_id', 'varchar(64)')
    .execute();

  await db.schema
    .createTable('agents')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('hostname', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('credential_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('state', 'varchar(32)', (c) => c.notNull())
    .addColumn('session_id', 'varchar(64)')
    .addColumn('slots', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('plugins', 'text', (c) => c.notNull())
    .addColumn('agent_version', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('drain_message', 'text')
    .addColumn('last_seen_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('providers')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('plugin', 'varchar(214)', (c) => c.notNull())
    .addColumn('endpoint', 'text')
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('credentials_enc', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('providers_zone_name', ['zone', 'name'])
    .execute();

  await db.schema
    .createTable('offerings')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('provider_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('external_id', 'varchar(255)')
    .addColumn('allow_adhoc', 'integer', (c) => c.notNull())
    .addColumn('allow_user_schedules', 'integer', (c) => c.notNull())
    .addColumn('sla', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('offering_grants')
    .addColumn('offering_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('offering_grants_pk', ['offering_id', 'tenant_id'])
    .execute();

  await db.schema
    .createTable('instances')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('locator', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'varchar(64)')
    .addColumn('offering_id', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('instances_tenant').on('instances').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('tasks')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('state', 'varchar(32)', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_id', 'varchar(64)')
    .addColumn('backup_id', 'varchar(64)')
    .addColumn('offering_id', 'varchar(64)')
    .addColumn('provider_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('plugin', 'varchar(214)', (c) => c.notNull())
    .addColumn('zone', 'varchar(100)', (c) => c.notNull())
    .addColumn('pinned_agent_id', 'varchar(64)')
    .addColumn('agent_id', 'varchar(64)')
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('percent', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('progress_message', 'text')
    .addColumn('eta_seconds', 'integer')
    .addColumn('error_code', 'varchar(100)')
    .addColumn('error_message', 'text')
    .addColumn('output', 'text')
    .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_expires_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('dispatched_at', 'bigint')
    .addColumn('started_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .execute();
  await db.schema.createIndex('tasks_queue').on('tasks').columns(['state', 'priority', 'created_at']).execute();
  await db.schema.createIndex('tasks_agent').on('tasks').columns(['agent_id', 'state']).execute();
  await db.schema.createIndex('tasks_instance').on('tasks').columns(['instance_id', 'state']).execute();
  await db.schema.createIndex('tasks_tenant').on('tasks').columns(['tenant_id', 'created_at']).execute();

  await db.schema
    .createTable('task_progress')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('task_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('agent_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('spool_seq', 'bigint', (c) => c.notNull())
    .addColumn('percent', 'double precision', (c) => c.notNull())
    .addColumn('bytes_done', 'bigint', (c) => c.notNull())
    .addColumn('bytes_total', 'bigint', (c) => c.notNull())
    .addColumn('message', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('task_progress_source', ['agent_id', 'spool_seq'])
    .execute();
  await db.schema.createIndex('task_progress_task').on('task_progress').columns(['task_id', 'id']).execute();

  await db.schema
    .createTable('events')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('type', 'varchar(100)', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('task_id', 'varchar(64)')
    .addColumn('instance_id', 'varchar(64)')
    .addColumn('job_id', 'varchar(64)')
    .addColumn('agent_id', 'varchar(64)')
    .addColumn('data', 'text')
    .addColumn('source_agent_id', 'varchar(64)')
    .addColumn('source_seq', 'bigint')
    .addUniqueConstraint('events_source', ['source_agent_id', 'source_seq'])
    .execute();
  await db.schema.createIndex('events_tenant').on('events').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('backups')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('offering_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('task_id', 'varchar(64)', (c) => c.unique())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('mode', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('added_bytes', 'bigint')
    .addColumn('external_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('parent_id', 'varchar(64)')
    .addColumn('expires_at', 'bigint')
    .execute();
  await db.schema.createIndex('backups_instance').on('backups').columns(['instance_id', 'created_at']).execute();
  await db.schema.createIndex('backups_tenant').on('backups').columns(['tenant_id', 'created_at']).execute();

  await createIdempotencyKeys(db);
}

/** The idempotency records as this migration made them (0005 replaces them, and its `down` makes these again). */
export async function createIdempotencyKeys(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('idem_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('request_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('location', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['tenant_id', 'idem_key'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'idempotency_keys',
    'backups',
    'events',
    'task_progress',
    'tasks',
    'instances',
    'offering_grants',
    'offerings',
    'providers',
    'agents',
    'agent_enrollments',
    'api_tokens',
    'tenants',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
