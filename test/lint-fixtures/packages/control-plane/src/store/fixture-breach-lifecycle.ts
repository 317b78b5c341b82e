// expect: import-x/no-restricted-paths store/ may import only domain/
// The store is below the task lifecycle: it reads and writes rows, lifecycle/ decides with domain/ and calls it.
import { Reports } from '../lifecycle/reports.js';

export const used = Reports;
