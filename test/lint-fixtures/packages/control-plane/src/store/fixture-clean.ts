// expect: clean
import { sql } from 'kysely';
import { NotFoundError } from '../domain/errors.js';
import { openStore } from './db.js';
import { newId } from './ids.js';

export const used = [sql, NotFoundError, openStore, newId];
