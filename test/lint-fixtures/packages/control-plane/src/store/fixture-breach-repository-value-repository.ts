// expect: @typescript-eslint/no-restricted-imports store/ imports no repository, not even its type
// A repository (its name ends in -repository) importing another repository's code.
import { CatalogRepository } from './catalog-repository.js';

export const used = CatalogRepository;
