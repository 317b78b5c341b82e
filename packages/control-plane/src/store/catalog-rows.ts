import { template } from './compiled.js';

/*
 * The catalog's rows by id, read by every create, dispatch and report: compiled once (see
 * compiled.ts). Not a repository: it holds no handle, and the repositories that read these rows
 * in their own transactions (catalog, provider schedules, backup jobs) share it.
 */

export const PROVIDER_BY_ID = template((db, p: { id: string }) =>
  db.selectFrom('providers').selectAll().where('id', '=', p.id),
);
export const OFFERING_BY_ID = template((db, p: { id: string }) =>
  db.selectFrom('offerings').selectAll().where('id', '=', p.id),
);
export const INSTANCE_BY_ID = template((db, p: { id: string }) =>
  db.selectFrom('instances').selectAll().where('id', '=', p.id),
);
