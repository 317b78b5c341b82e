// expect: @typescript-eslint/no-restricted-imports domain/ holds pure rules: no node:*
// expect: @typescript-eslint/no-restricted-imports domain/ holds pure rules: no node:*
import fs from 'node:fs';
import { Kysely } from 'kysely';

export const used = [fs, Kysely];
