// expect: clean
import type { A } from './type-cycle-a.js';

export interface B {
  a?: A;
}
