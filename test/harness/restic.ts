import { spawnSync } from 'node:child_process';

/**
 * Whether a restic binary runs here. The restic plugin's tests use the real one; without it they
 * are skipped with a notice (outside CI), as the MySQL half is without a database.
 */
export const hasRestic = spawnSync('restic', ['version'], { stdio: 'ignore' }).status === 0;
