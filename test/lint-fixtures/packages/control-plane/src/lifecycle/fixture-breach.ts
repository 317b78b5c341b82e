// expect: import-x/no-restricted-paths lifecycle/ may import only domain/, store/ and the leaves
import { BackupJobs } from '../service/backup-jobs.js';

export const used = BackupJobs;
