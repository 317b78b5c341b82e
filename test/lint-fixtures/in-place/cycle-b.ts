// expect: import-x/no-cycle Dependency cycle
import { a } from './cycle-a.js';

export const b = () => a;
