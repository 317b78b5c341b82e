import type { Db } from './db.js';
import { template } from './compiled.js';
import type { InstanceRow, OfferingRow, ProviderRow } from './schema.js';

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

/**
 * Every column of each row: the joined read below names each once. `Record<keyof …>` makes a
 * column added to a row type and not here fail to compile.
 */
const INSTANCE_COLUMNS = Object.keys({
  id: 1,
  tenantId: 1,
  name: 1,
  zone: 1,
  locator: 1,
  agentId: 1,
  offeringId: 1,
  createdAt: 1,
  offeringSetAt: 1,
  scheduleOwner: 1,
  scheduleState: 1,
  scheduleTaskId: 1,
  locatorClaim: 1,
} satisfies Record<keyof InstanceRow, 1>);
const OFFERING_COLUMNS = Object.keys({
  id: 1,
  tenantId: 1,
  name: 1,
  description: 1,
  zone: 1,
  providerId: 1,
  externalId: 1,
  allowAdhoc: 1,
  allowUserSchedules: 1,
  minUserScheduleIntervalS: 1,
  sla: 1,
  createdAt: 1,
  slaSetAt: 1,
  nextFireAt: 1,
} satisfies Record<keyof OfferingRow, 1>);
const PROVIDER_COLUMNS = Object.keys({
  id: 1,
  zone: 1,
  name: 1,
  plugin: 1,
  endpoint: 1,
  endpointEnc: 1,
  config: 1,
  credentialsEnc: 1,
  createdAt: 1,
  updatedAt: 1,
  tenantLocators: 1,
  repositoryIdentity: 1,
  exportTo: 1,
} satisfies Record<keyof ProviderRow, 1>);

/** Each table's columns, aliased by table letter and position (`i0`, `o3`): no name clashes. */
const CHAIN_SELECTIONS = [
  ...INSTANCE_COLUMNS.map((c, k) => `instances.${c} as i${k}`),
  ...OFFERING_COLUMNS.map((c, k) => `offerings.${c} as o${k}`),
  ...PROVIDER_COLUMNS.map((c, k) => `providers.${c} as p${k}`),
];

const CHAIN_BY_INSTANCE = template((db, p: { id: string }) =>
  db
    .selectFrom('instances')
    .leftJoin('offerings', 'offerings.id', 'instances.offeringId')
    .leftJoin('providers', 'providers.id', 'offerings.providerId')
    .select(CHAIN_SELECTIONS as never)
    .where('instances.id', '=', p.id),
);

/** An instance, the offering it has and the provider connection that offering goes through. */
export interface CatalogChain {
  instance?: InstanceRow;
  /** Absent: the instance has none, or it no longer exists. */
  offering?: OfferingRow;
  /** Absent: no offering, or its provider connection no longer exists. */
  provider?: ProviderRow;
}

/**
 * The instance `id` with its offering and that offering's provider connection, in one statement
 * (three reads by id otherwise, each a round trip on MySQL), read through `db` (a transaction
 * reads them there, from one snapshot).
 */
export async function catalogChain(db: Db, id: string): Promise<CatalogChain> {
  const row = (await CHAIN_BY_INSTANCE.first(db, { id })) as Record<string, unknown> | undefined;
  if (!row) return {};
  const part = <T>(letter: string, columns: readonly string[]): T | undefined => {
    // Position 0 is each row's id: null where a left join found no row.
    if (row[`${letter}0`] == null) return undefined;
    const out: Record<string, unknown> = {};
    columns.forEach((c, k) => (out[c] = row[`${letter}${k}`]));
    return out as T;
  };
  const instance = part<InstanceRow>('i', INSTANCE_COLUMNS);
  const offering = part<OfferingRow>('o', OFFERING_COLUMNS);
  const provider = offering && part<ProviderRow>('p', PROVIDER_COLUMNS);
  return { ...(instance ? { instance } : {}), ...(offering ? { offering } : {}), ...(provider ? { provider } : {}) };
}
