// expect: import-x/no-cycle Dependency cycle
import { b } from './cycle-b.js';

export const a = () => b;
