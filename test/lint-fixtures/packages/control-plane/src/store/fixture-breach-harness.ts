// expect: @typescript-eslint/no-restricted-imports the test harness is for tests
import { freshDatabase } from '@cairn/test-harness/databases';

export const used = freshDatabase;
