// expect: clean
// A repository uses its own store helpers and rows, and the task factory's types (a task made elsewhere).
import { sql } from 'kysely';
import type { NewTask } from '../domain/task-factory.js';
import { transact, type Db } from './db.js';
import { newId } from './ids.js';
import { decodeCursor } from './page.js';
import type { TaskRow } from './schema.js';

export type Used = [NewTask, Db, TaskRow];
export const used = [sql, transact, newId, decodeCursor];
