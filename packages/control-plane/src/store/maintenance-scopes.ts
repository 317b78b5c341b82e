import { sql, type Expression, type SqlBool } from 'kysely';
import type { MaintenanceScope } from '../domain/maintenance.js';

/**
 * Rows of a table whose zone and agent columns place them in `scope` (global: every row). For
 * tasks waiting in the queue the agent column is the pinned agent; for held ones the agent
 * holding them; for instances the one they are pinned to.
 */
export function inScope(scope: MaintenanceScope, zoneColumn: string, agentColumn: string): Expression<SqlBool> {
  switch (scope.kind) {
    case 'global':
      return sql<SqlBool>`1 = 1`;
    case 'zone':
      return sql<SqlBool>`${sql.ref(zoneColumn)} = ${scope.zone}`;
    case 'agent':
      return sql<SqlBool>`${sql.ref(agentColumn)} = ${scope.agentId}`;
  }
}
