// expect: import-x/no-restricted-paths service/ may import only domain/, store/, lifecycle/ and the leaves
import { Dispatcher } from '../dispatch/dispatcher.js';

export const used = Dispatcher;
