// expect: @typescript-eslint/no-restricted-imports a repository imports no other repository's code (types only)
// A repository (its name ends in -repository) importing another repository's code.
import { CatalogRepository } from './catalog-repository.js';

export const used = CatalogRepository;
