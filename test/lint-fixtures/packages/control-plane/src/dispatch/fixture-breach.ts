// expect: import-x/no-restricted-paths dispatch/ may import only domain/, store/, lifecycle/ and the leaves
// expect: import-x/no-restricted-paths dispatch/ may import only domain/, store/, lifecycle/ and the leaves
import { createApp } from '../api/app.js';
import { Operations } from '../service/operations.js';

export const used = [createApp, Operations];
