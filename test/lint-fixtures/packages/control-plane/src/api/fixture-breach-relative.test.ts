// expect: import-x/no-relative-packages Relative import from another package is not allowed
// How src/ tests reached the harness before it was a package.
import { Api } from '../../../../test/harness/api.js';

export const used = Api;
