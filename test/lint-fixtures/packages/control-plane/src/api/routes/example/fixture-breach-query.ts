// expect: no-restricted-syntax routes run no SQL: call the operation
// expect: no-restricted-syntax routes run no SQL: call the operation
// expect: no-restricted-syntax routes run no SQL: no sql`` templates
import type { ApiDeps } from '../../context.js';

// No import of kysely at all, yet a query on a handle it got hold of.
export async function handler(deps: ApiDeps, sql: (s: TemplateStringsArray) => unknown) {
  await deps.db.selectFrom('tasks').selectAll().execute();
  await deps.db.deleteFrom('tasks').execute();
  return sql`select 1`;
}
