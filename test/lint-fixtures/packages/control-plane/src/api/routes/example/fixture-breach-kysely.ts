// expect: @typescript-eslint/no-restricted-imports routes run no SQL: call the operation
// expect: @typescript-eslint/no-restricted-imports routes run no SQL: call the operation
import { sql } from 'kysely';
import Database from 'better-sqlite3';

export const used = [sql, Database];
