// expect: clean
// Tests may use the harness, by its package name.
import { freshDatabase } from '@cairn/test-harness/databases';

export const used = freshDatabase;
