/**
 * Only a table's owners write it. Every write the control plane makes (Kysely's insertInto,
 * replaceInto, updateTable, deleteFrom, and raw `insert into` / `update … set` / `delete from`)
 * is found in its source, outside tests, testing/ folders and migrations, and each table's
 * writers must be exactly the files this list names: a new writer anywhere (a route, a service,
 * the lifecycle, another repository) fails here until it is made the owner's job or declared.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const src = path.join(root, 'packages/control-plane/src');

/** Each table and the files that write it (relative to packages/control-plane/src). */
const OWNERS: Record<string, string[]> = {
  agentEnrollments: ['store/agent-repository.ts'],
  agents: ['store/agent-repository.ts'],
  apiTokens: ['store/tenant-repository.ts'],
  authEpoch: ['store/tenant-repository.ts'],
  backupJobMembers: ['store/job-repository.ts'],
  backupJobRuns: ['store/job-repository.ts'],
  backupJobSchedules: ['store/job-repository.ts'],
  backupJobs: ['store/job-repository.ts'],
  backups: ['store/backup-repository.ts'],
  dutyLeases: ['store/duty-lease-repository.ts'],
  eventClock: ['store/event-log.ts'],
  // Forgotten past the service provider's limits by the history sweep's repository.
  events: ['store/event-log.ts', 'store/event-repository.ts', 'store/history-repository.ts'],
  historyMarks: ['store/history-repository.ts'],
  historyState: ['store/history-repository.ts'],
  idempotencyKeys: ['store/idempotency-repository.ts'],
  instances: ['store/catalog-repository.ts'],
  // Each instance's newest restore point, kept by the writer of its records.
  newestBackups: ['store/backup-repository.ts', 'store/newest-backups.ts'],
  maintenanceScopes: ['store/maintenance-repository.ts'],
  offeringGrants: ['store/catalog-repository.ts'],
  offerings: ['store/catalog-repository.ts'],
  providerSyncs: ['store/sync-repository.ts'],
  providerTenantRoots: ['store/catalog-repository.ts'],
  providers: ['store/catalog-repository.ts'],
  // Moved with the records by the backup repository; the quota repository only makes a tenant's
  // row at zero before its locking read of it (a missing key would lock the gap beside it).
  restorePointUsage: ['store/backup-repository.ts', 'store/quota-repository.ts'],
  rpoState: ['store/rpo-repository.ts'],
  scheduleFires: ['store/schedule-repository.ts'],
  syncPages: ['store/sync-repository.ts'],
  taskProgress: ['store/history-repository.ts', 'store/report-repository.ts'],
  // A task's row is moved by the repository of each step of its life: made and cancelled
  // (task-repository), claimed, re-sent, failed and lost (queue-repository), reported on
  // (report-repository), its agent's deletion (agent-repository), its restore point
  // (backup-repository); an ended task is forgotten past its limit (history-repository). Each move
  // is a conditional update on state and attempt.
  tasks: [
    'store/agent-repository.ts',
    'store/backup-repository.ts',
    'store/history-repository.ts',
    'store/queue-repository.ts',
    'store/report-repository.ts',
    'store/task-repository.ts',
  ],
  // Ended tasks per state and kind: moved as a task ends (task-endings.ts calls it) and as the
  // history sweep forgets one, through task-counts.ts.
  taskCounts: ['store/task-counts.ts'],
  // Moved by the repositories that make and remove what it counts, through tenant-counts.ts.
  tenantCounts: ['store/tenant-counts.ts'],
  tenantQuotas: ['store/quota-repository.ts'],
  // The quota repository locks a tenant's row (an update of nothing) to count its usage alone.
  tenants: ['store/quota-repository.ts', 'store/tenant-repository.ts'],
  userSchedules: ['store/schedule-repository.ts'],
  // The next fire of every kind of schedule (user, SLA, job) in one statement over a named table;
  // insertRows, the compiled insert, and upsert, the insert-or-update of either store, whose
  // callers are counted for the table they name.
  '(dynamic)': ['store/compiled.ts', 'store/schedule-repository.ts'],
};

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The tables `text` writes: Kysely's builders by name, raw SQL (in sql`…` templates) by its snake_case name; by a variable, "(dynamic)". */
export function writtenTables(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(?:insertInto|replaceInto|updateTable|deleteFrom)\(\s*(?:(['"])(\w+)\1|\w)/g))
    found.add(m[2] ?? '(dynamic)');
  // The compiled insert and upsert (store/compiled.ts) write the table their caller names.
  for (const m of text.matchAll(/\b(?:insertRows|upsert)\(\s*\w+,\s*(['"])(\w+)\1/g)) found.add(m[2]!);
  for (const [, body] of text.matchAll(/\bsql(?:<[^>]*>)?`([^`]*)`/g)) {
    for (const m of body!.matchAll(/\b(?:insert\s+into|delete\s+from|update)\s+(?:([a-z][a-z_]*)\b|\$\{)/gi)) {
      if (/^update/i.test(m[0]) && !/\bset\b/i.test(body!.slice(m.index!, m.index! + m[0].length + 80))) continue;
      found.add(m[1] ? camel(m[1]) : '(dynamic)');
    }
  }
  return [...found];
}

function productFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'testing' || e.name === 'migrations' ? [] : productFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

describe('table owners', () => {
  it('finds the writes it looks for (Kysely, raw SQL, a table by variable) and not prose', () => {
    expect(writtenTables("await trx.updateTable('tasks').set({})")).toEqual(['tasks']);
    expect(writtenTables('await sql`insert into provider_syncs (a) values (1)`')).toEqual(['providerSyncs']);
    expect(writtenTables('await sql`update api_tokens set source = 1`')).toEqual(['apiTokens']);
    expect(writtenTables('await sql`update ${sql.table(table)} set x = 1`')).toEqual(['(dynamic)']);
    expect(writtenTables('db.deleteFrom(table).execute()')).toEqual(['(dynamic)']);
    expect(writtenTables("await insertRows(trx, 'events', rows)")).toEqual(['events']);
    expect(writtenTables("await upsert(\n  trx,\n  'tenantCounts',\n  row,")).toEqual(['tenantCounts']);
    expect(writtenTables('// we update the tasks here; delete from the list')).toEqual([]);
    expect(writtenTables('await sql`select 1 from tasks`')).toEqual([]);
  });

  it('every table is written by its owners only', () => {
    const writers: Record<string, string[]> = {};
    for (const file of productFiles(src)) {
      const rel = path.relative(src, file).split(path.sep).join('/');
      for (const table of writtenTables(fs.readFileSync(file, 'utf8'))) (writers[table] ??= []).push(rel);
    }
    for (const list of Object.values(writers)) list.sort();
    expect(writers).toEqual(OWNERS);
  });
});
