// expect: @typescript-eslint/no-restricted-imports routes run no SQL: call a repository
// expect: @typescript-eslint/no-restricted-imports routes run no SQL: call a repository
import { sql } from 'kysely';
import Database from 'better-sqlite3';

export const used = [sql, Database];
