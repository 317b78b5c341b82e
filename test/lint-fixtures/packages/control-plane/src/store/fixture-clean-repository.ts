// expect: clean
// A repository takes the repositories it calls as types; its own store helpers are values.
import { sql } from 'kysely';
import type { CatalogRepository } from './catalog-repository.js';
import { transact, type Db } from './db.js';
import { newId } from './ids.js';
import { decodeCursor } from './page.js';

export type Used = [CatalogRepository, Db];
export const used = [sql, transact, newId, decodeCursor];
