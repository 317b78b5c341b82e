// expect: import-x/no-restricted-paths scheduler/ may import only domain/, store/, lifecycle/, service/ and the leaves
// expect: import-x/no-restricted-paths scheduler/ may import only domain/, store/, lifecycle/, service/ and the leaves
import { createApp } from '../api/app.js';
import { Dispatcher } from '../dispatch/dispatcher.js';

export const used = [createApp, Dispatcher];
