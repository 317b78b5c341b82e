// expect: import-x/no-restricted-paths lifecycle/ may import only domain/, store/ and the leaves
// expect: import-x/no-restricted-paths lifecycle/ may import only domain/, store/ and the leaves
import { Dispatcher } from '../dispatch/dispatcher.js';
import { Operations } from '../service/operations.js';

export const used = [Dispatcher, Operations];
