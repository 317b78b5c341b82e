// expect: import-x/no-restricted-paths store/ may import only domain/
// expect: import-x/no-restricted-paths store/ may import only domain/
import { Operations } from '../service/operations.js';
import { Metrics } from '../observability/metrics.js';

export const used = [Operations, Metrics];
