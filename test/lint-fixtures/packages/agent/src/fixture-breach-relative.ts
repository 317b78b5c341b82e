// expect: import-x/no-relative-packages Relative import from another package is not allowed
import { normaliseName } from '../../control-plane/src/domain/names.js';

export const used = normaliseName;
