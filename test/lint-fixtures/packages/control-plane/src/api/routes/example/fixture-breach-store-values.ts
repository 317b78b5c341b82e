// expect: @typescript-eslint/no-restricted-imports routes run no SQL: from store/ they import repository and row types only
// expect: @typescript-eslint/no-restricted-imports routes run no SQL: from store/db.ts they import only storeReady
import { newId } from '../../../store/ids.js';
import { openStore } from '../../../store/db.js';

export const used = [newId, openStore];
