// expect: import-x/no-restricted-paths spool/ and state/ keep files on disk: they import only each other and the clock
import { createLogger } from '../logger.js';

export const used = createLogger;
