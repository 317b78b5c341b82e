// expect: clean
// A cycle of type imports only is erased at run time.
import type { B } from './type-cycle-b.js';

export interface A {
  b?: B;
}
