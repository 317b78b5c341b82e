// expect: @typescript-eslint/no-restricted-imports routes run no SQL: from store/ they import repository and row types only
// A route that builds its own repository instead of calling the one (or the operation) it is handed.
import { CatalogRepository } from '../../../store/catalog-repository.js';

export const used = CatalogRepository;
