import { maskEndpoint } from '../domain/endpoint.js';
import { ConflictError } from '../domain/errors.js';
import { HELD_STATES } from '../domain/task.js';
import { USER_SCHEDULE_FLOOR_S } from '../domain/schedule.js';
import { transact, type Db } from './db.js';
import { current, isMysql } from './dialect.js';
import type { Clock } from '../clock.js';
import { newId } from './ids.js';
import { decodeCursor, pageOf, searchedList, type Page, type PageRequest } from './page.js';
import type { Transaction } from 'kysely';
import { cairnFiresSla, type InstanceSchedule } from '../domain/provider-schedule.js';
import { scheduleOf } from './instance-schedule.js';
import type { LocatorClaim, TenantLocators } from '../domain/locator-claims.js';
import type { Database, InstanceRow, OfferingRow, ProviderRow, Sla } from './schema.js';
import type { SecretBox } from './secrets.js';
import { template } from './compiled.js';
import { tickEventClock } from './event-log.js';
import { forgetNewest } from './newest-backups.js';
import { moveCount } from './tenant-counts.js';
import { catalogChain, INSTANCE_BY_ID, OFFERING_BY_ID, PROVIDER_BY_ID, type CatalogChain } from './catalog-rows.js';

export interface ProviderInput {
  zone: string;
  name: string;
  plugin: string;
  endpoint: string | null;
  config: Record<string, unknown>;
  credentials: Record<string, unknown> | null;
  /** Who may claim locators through it; default `sp-only`. */
  tenantLocators?: TenantLocators;
  /** The connection of the zone it exports into (checked by the service); default none. */
  exportTo?: string | null;
}

/** An offering's SLA (defined beside the offering's row, which the schedules read too). */
export type { Sla } from './schema.js';

export interface OfferingInput {
  tenantId: string;
  name: string;
  description: string;
  zone: string;
  providerId: string;
  externalId: string | null;
  allowAdhoc: boolean;
  allowUserSchedules: boolean;
  /** Default USER_SCHEDULE_FLOOR_S.default. */
  minUserScheduleIntervalS?: number;
  sla: Sla | null;
  /** When the SLA was set, by the scheduler's clock (default: `now`). */
  slaSetAt?: number;
}

export interface InstanceInput {
  tenantId: string;
  name: string;
  zone: string;
  locator: unknown;
  agentId: string | null;
  /** Who set the locator; default `tenant`, the claim that is judged. */
  locatorClaim?: LocatorClaim;
}

/** A connection as a task carries it (the SDK's ProviderConnection). */
export interface TaskConnection {
  endpoint: string | null;
  config: Record<string, unknown>;
  credentials: Record<string, unknown>;
  identity?: string;
}

/** Every provider connection (read by the scheduler's rounds and each dispatch round). */
const ALL_PROVIDERS = template((db) => db.selectFrom('providers').selectAll().orderBy('id'));

/** Provider connections, offerings and their grants, and instances. */
export class CatalogRepository {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly secrets: SecretBox,
  ) {}

  // --- provider connections ---

  async createProvider(input: ProviderInput, now = this.clock.now()): Promise<ProviderRow> {
    const dup = await this.db
      .selectFrom('providers')
      .select('id')
      .where('zone', '=', input.zone)
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (dup)
      throw new ConflictError(
        `zone ${input.zone} already has a provider connection named "${input.name}"`,
        'provider_exists',
      );
    const row: ProviderRow = {
      id: newId('prv', now),
      zone: input.zone,
      name: input.name,
      plugin: input.plugin,
      ...this.endpointColumns(input.endpoint),
      config: JSON.stringify(input.config),
      credentialsEnc: input.credentials ? this.secrets.seal(input.credentials) : null,
      createdAt: now,
      updatedAt: now,
      tenantLocators: input.tenantLocators ?? 'sp-only',
      repositoryIdentity: null,
      exportTo: input.exportTo ?? null,
    };
    await this.db.insertInto('providers').values(row).execute();
    return row;
  }

  /** The host roots `tenantId` was granted on the connection (empty: none). */
  async tenantRoots(providerId: string, tenantId: string): Promise<string[]> {
    const row = await this.db
      .selectFrom('providerTenantRoots')
      .select('roots')
      .where('providerId', '=', providerId)
      .where('tenantId', '=', tenantId)
      .executeTakeFirst();
    return row ? (JSON.parse(row.roots) as string[]) : [];
  }

  /** Every tenant's roots on the connection, by tenant id. */
  async allTenantRoots(providerId: string): Promise<Map<string, string[]>> {
    const rows = await this.db
      .selectFrom('providerTenantRoots')
      .select(['tenantId', 'roots'])
      .where('providerId', '=', providerId)
      .orderBy('tenantId')
      .execute();
    return new Map(rows.map((r) => [r.tenantId, JSON.parse(r.roots) as string[]]));
  }

  /** Grants (or, with an empty list, withdraws) a tenant's roots on the connection. */
  async setTenantRoots(providerId: string, tenantId: string, roots: readonly string[], now = this.clock.now()) {
    await this.db
      .deleteFrom('providerTenantRoots')
      .where('providerId', '=', providerId)
      .where('tenantId', '=', tenantId)
      .execute();
    if (roots.length > 0)
      await this.db
        .insertInto('providerTenantRoots')
        .values({ providerId, tenantId, roots: JSON.stringify(roots), createdAt: now, updatedAt: now })
        .execute();
  }

  /** The connections of a zone, with the policy each applies to tenant locators. */
  async providersInZone(zone: string): Promise<ProviderRow[]> {
    return this.db.selectFrom('providers').selectAll().where('zone', '=', zone).orderBy('id').execute();
  }

  /**
   * Instances whose locator a tenant claimed and that use the connection: through their
   * offering. (A restore-volume target is judged when the restore is asked.)
   */
  async tenantClaimsOn(providerId: string, tenantId?: string): Promise<InstanceRow[]> {
    let q = this.db
      .selectFrom('instances')
      .innerJoin('offerings', 'offerings.id', 'instances.offeringId')
      .selectAll('instances')
      .where('offerings.providerId', '=', providerId)
      .where('instances.locatorClaim', '=', 'tenant')
      .orderBy('instances.id');
    if (tenantId !== undefined) q = q.where('instances.tenantId', '=', tenantId);
    return q.execute();
  }

  async getProvider(id: string): Promise<ProviderRow | undefined> {
    return PROVIDER_BY_ID.first(this.db, { id });
  }

  /** Every provider connection of every zone (the periodic sync visits each). */
  async allProviders(): Promise<ProviderRow[]> {
    return ALL_PROVIDERS.all(this.db, {});
  }

  async listProviders(zone: string, page: PageRequest): Promise<Page<ProviderRow>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('providers')
      .selectAll()
      .where('zone', '=', zone)
      .orderBy('id')
      .limit(page.limit + 1);
    if (after) q = q.where('id', '>', after);
    return pageOf(await q.execute(), page.limit);
  }

  /**
   * The stored form of an endpoint: as shown (a password replaced by `***`), and the whole of
   * it sealed when it held a password, so the clear password is never stored nor answered.
   */
  private endpointColumns(endpoint: string | null): Pick<ProviderRow, 'endpoint' | 'endpointEnc'> {
    if (endpoint === null) return { endpoint: null, endpointEnc: null };
    const { shown, secret } = maskEndpoint(endpoint);
    return { endpoint: shown, endpointEnc: secret === undefined ? null : this.secrets.seal(endpoint) };
  }

  /** A connection's whole endpoint, its password included (for the agent, and to hide it from tenants). */
  fullEndpoint(row: Pick<ProviderRow, 'endpoint' | 'endpointEnc'>): string | null {
    return row.endpointEnc ? (this.secrets.open(row.endpointEnc) as string) : row.endpoint;
  }

  /** Every connection's whole endpoint: what a tenant must never read (see `api/audience.ts`). */
  async allEndpoints(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('providers')
      .select(['endpoint', 'endpointEnc'])
      .where('endpoint', 'is not', null)
      .execute();
    return rows.map((r) => this.fullEndpoint(r)!);
  }

  /**
   * Seals the passwords of endpoints stored in clear before endpoints were sealed (run at start;
   * idempotent, and safe on several replicas at once: each row changes only from what was read).
   */
  async sealEndpointSecrets(): Promise<number> {
    const rows = await this.db
      .selectFrom('providers')
      .select(['id', 'endpoint'])
      .where('endpoint', 'is not', null)
      .where('endpointEnc', 'is', null)
      .execute();
    let sealed = 0;
    for (const row of rows) {
      const columns = this.endpointColumns(row.endpoint);
      if (columns.endpointEnc === null) continue;
      const r = await this.db
        .updateTable('providers')
        .set(columns)
        .where('id', '=', row.id)
        .where('endpoint', '=', row.endpoint)
        .where('endpointEnc', 'is', null)
        .executeTakeFirst();
      sealed += Number(r.numUpdatedRows);
    }
    return sealed;
  }

  /**
   * Edits apply to future tasks; the plugin type never changes. An endpoint sent back as it is
   * shown (its password as `***`) keeps the stored one: a client that echoes a GET changes nothing.
   */
  async updateProvider(
    id: string,
    patch: {
      name?: string;
      endpoint?: string | null;
      config?: Record<string, unknown>;
      credentials?: Record<string, unknown> | null;
      tenantLocators?: TenantLocators;
      /** Only null: forgets the recorded repository identity (the next task records the one it finds). */
      repositoryIdentity?: null;
      /** The connection it exports into (checked by the service); null: none. */
      exportTo?: string | null;
    },
    now = this.clock.now(),
  ): Promise<void> {
    let endpoint = {};
    if (patch.endpoint !== undefined) {
      const current = await this.db.selectFrom('providers').select('endpoint').where('id', '=', id).executeTakeFirst();
      const unchanged = patch.endpoint !== null && current?.endpoint === patch.endpoint;
      if (!unchanged) endpoint = this.endpointColumns(patch.endpoint);
    }
    await this.db
      .updateTable('providers')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.tenantLocators !== undefined ? { tenantLocators: patch.tenantLocators } : {}),
        ...(patch.repositoryIdentity === null ? { repositoryIdentity: null } : {}),
        ...(patch.exportTo !== undefined ? { exportTo: patch.exportTo } : {}),
        ...endpoint,
        ...(patch.config !== undefined ? { config: JSON.stringify(patch.config) } : {}),
        ...(patch.credentials !== undefined
          ? { credentialsEnc: patch.credentials ? this.secrets.seal(patch.credentials) : null }
          : {}),
        updatedAt: now,
      })
      .where('id', '=', id)
      .execute();
  }

  /**
   * The export links of `zone`'s connections (each one's id and `exportTo`) as committed now, every
   * row locked until the transaction ends (MySQL/MariaDB: `FOR UPDATE`; SQLite lets one writer in at
   * a time). A change checked against them cannot race another: two PATCHes naming each other, or
   * an exportTo set on a connection while its target is deleted, run one after the other, and the
   * second sees the first. All of the zone's rows: a check reads both ends of a link.
   */
  async lockExportLinks(zone: string): Promise<{ id: string; exportTo: string | null }[]> {
    return current(
      this.db,
      this.db.selectFrom('providers').select(['id', 'exportTo']).where('zone', '=', zone).orderBy('id'),
    ).execute();
  }

  /** Deletes the connection `id` of `zone`, unless an offering uses it or a connection exports into it. */
  async deleteProvider(id: string, zone: string): Promise<void> {
    const exporter = (await this.lockExportLinks(zone)).find((p) => p.exportTo === id)?.id;
    const used = await this.db.selectFrom('offerings').select('id').where('providerId', '=', id).executeTakeFirst();
    if (used) throw new ConflictError(`provider connection ${id} is used by offering ${used.id}`, 'provider_in_use');
    if (exporter)
      throw new ConflictError(
        `provider connection ${id} is the export target (exportTo) of provider connection ${exporter}`,
        'provider_in_use',
      );
    await this.db.deleteFrom('providerTenantRoots').where('providerId', '=', id).execute();
    await this.db.deleteFrom('providers').where('id', '=', id).execute();
  }

  /**
   * What an agent receives for a task: endpoint, config, decrypted credentials, and the identity
   * of the repository the connection reached before, once recorded.
   */
  connectionFor(row: ProviderRow): TaskConnection {
    return {
      endpoint: this.fullEndpoint(row),
      config: JSON.parse(row.config) as Record<string, unknown>,
      credentials: row.credentialsEnc ? (this.secrets.open(row.credentialsEnc) as Record<string, unknown>) : {},
      ...(row.repositoryIdentity === null ? {} : { identity: row.repositoryIdentity }),
    };
  }

  /**
   * `connectionFor`, with the connection it names as its export target (read now: as it is at
   * dispatch) under `exportTo`, its plugin added. A target gone meanwhile is left out: the plugin
   * then fails the task naming `exportTo`.
   */
  async taskConnectionFor(
    row: ProviderRow,
  ): Promise<TaskConnection & { exportTo?: TaskConnection & { plugin: string } }> {
    const own = this.connectionFor(row);
    if (row.exportTo === null) return own;
    const target = await this.getProvider(row.exportTo);
    if (!target) return own;
    return { ...own, exportTo: { plugin: target.plugin, ...this.connectionFor(target) } };
  }

  // --- offerings and grants ---

  /** Creates an offering; the creating admin's tenant is granted it at once. */
  async createOffering(input: OfferingInput, now = this.clock.now()): Promise<OfferingRow> {
    const row: OfferingRow = {
      id: newId('off', now),
      tenantId: input.tenantId,
      name: input.name,
      description: input.description,
      zone: input.zone,
      providerId: input.providerId,
      externalId: input.externalId,
      allowAdhoc: input.allowAdhoc ? 1 : 0,
      allowUserSchedules: input.allowUserSchedules ? 1 : 0,
      minUserScheduleIntervalS: input.minUserScheduleIntervalS ?? USER_SCHEDULE_FLOOR_S.default,
      sla: input.sla ? JSON.stringify(input.sla) : null,
      createdAt: now,
      slaSetAt: input.sla ? (input.slaSetAt ?? now) : null,
    };
    await transact(this.db, async (trx) => {
      await trx.insertInto('offerings').values(row).execute();
      await trx
        .insertInto('offeringGrants')
        .values({ offeringId: row.id, tenantId: input.tenantId, createdAt: now })
        .execute();
    });
    return row;
  }

  async getOffering(id: string): Promise<OfferingRow | undefined> {
    return OFFERING_BY_ID.first(this.db, { id });
  }

  /** The offerings of `ids` that exist (a bounded batch). */
  async offeringsByIds(ids: readonly string[]): Promise<Map<string, OfferingRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('offerings')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** Changes apply from the next fire: a new SLA's fire times count from `slaSetAt`. */
  async updateOffering(
    id: string,
    patch: {
      name?: string;
      description?: string;
      allowAdhoc?: boolean;
      allowUserSchedules?: boolean;
      minUserScheduleIntervalS?: number;
      sla?: Sla | null;
    },
    slaSetAt: number,
  ): Promise<OfferingRow | undefined> {
    await this.db
      .updateTable('offerings')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.allowAdhoc !== undefined ? { allowAdhoc: patch.allowAdhoc ? 1 : 0 } : {}),
        ...(patch.allowUserSchedules !== undefined ? { allowUserSchedules: patch.allowUserSchedules ? 1 : 0 } : {}),
        ...(patch.minUserScheduleIntervalS !== undefined
          ? { minUserScheduleIntervalS: patch.minUserScheduleIntervalS }
          : {}),
        // A new SLA's next fire time is computed afresh by the next scheduler tick.
        ...(patch.sla !== undefined
          ? { sla: patch.sla ? JSON.stringify(patch.sla) : null, slaSetAt, nextFireAt: null }
          : {}),
      })
      .where('id', '=', id)
      .execute();
    // The RPO watch reads SLAs: its change mark moves with them.
    if (patch.sla !== undefined) await tickEventClock(this.db);
    return this.getOffering(id);
  }

  /** Instances assigned to an offering, in `trx` when given. */
  async instancesOfOffering(offeringId: string, trx?: Transaction<Database>): Promise<InstanceRow[]> {
    return (trx ?? this.db)
      .selectFrom('instances')
      .selectAll()
      .where('offeringId', '=', offeringId)
      .orderBy('id')
      .execute();
  }

  /** Instances of an offering whose SLA backups Cairn fires (see `cairnFiresSla`). */
  async instancesCairnFires(offeringId: string): Promise<InstanceRow[]> {
    return (await this.instancesOfOffering(offeringId)).filter((i) => cairnFiresSla(scheduleOf(i)));
  }

  /** All offerings (sp-admin), or those granted to `tenantId`. */
  async listOfferings(page: PageRequest, tenantId?: string): Promise<Page<OfferingRow>> {
    const after = decodeCursor(page.cursor);
    let q = this.db
      .selectFrom('offerings')
      .selectAll('offerings')
      .orderBy('offerings.id')
      .limit(page.limit + 1);
    if (after) q = q.where('offerings.id', '>', after);
    if (tenantId !== undefined) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('offeringGrants')
            .select('offeringGrants.offeringId')
            .whereRef('offeringGrants.offeringId', '=', 'offerings.id')
            .where('offeringGrants.tenantId', '=', tenantId),
        ),
      );
    }
    return pageOf(await q.execute(), page.limit);
  }

  /** The zones where a tenant has an offering (its own or granted): the only zones it sees and works in. */
  async offeredZones(tenantId: string, zone?: string): Promise<string[]> {
    let q = this.db
      .selectFrom('offerings')
      .select('offerings.zone')
      .distinct()
      .where((eb) =>
        eb.or([
          eb('offerings.tenantId', '=', tenantId),
          eb.exists(
            eb
              .selectFrom('offeringGrants')
              .select('offeringGrants.offeringId')
              .whereRef('offeringGrants.offeringId', '=', 'offerings.id')
              .where('offeringGrants.tenantId', '=', tenantId),
          ),
        ]),
      );
    if (zone !== undefined) q = q.where('offerings.zone', '=', zone);
    return (await q.orderBy('offerings.zone').execute()).map((r) => r.zone);
  }

  /** Whether a tenant has an offering (its own or granted) in the zone. */
  async zoneOffered(tenantId: string, zone: string): Promise<boolean> {
    return (await this.offeredZones(tenantId, zone)).length > 0;
  }

  async isGranted(offeringId: string, tenantId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('offeringGrants')
      .select('offeringId')
      .where('offeringId', '=', offeringId)
      .where('tenantId', '=', tenantId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async grant(offeringId: string, tenantId: string, now = this.clock.now()): Promise<void> {
    if (await this.isGranted(offeringId, tenantId)) return;
    await this.db.insertInto('offeringGrants').values({ offeringId, tenantId, createdAt: now }).execute();
  }

  async revoke(offeringId: string, tenantId: string): Promise<void> {
    await this.db
      .deleteFrom('offeringGrants')
      .where('offeringId', '=', offeringId)
      .where('tenantId', '=', tenantId)
      .execute();
  }

  async deleteOffering(id: string): Promise<void> {
    const used = await this.db.selectFrom('instances').select('id').where('offeringId', '=', id).executeTakeFirst();
    if (used) throw new ConflictError(`offering ${id} is assigned to instance ${used.id}`, 'offering_in_use');
    await transact(this.db, async (trx) => {
      await trx.deleteFrom('offeringGrants').where('offeringId', '=', id).execute();
      await trx.deleteFrom('offerings').where('id', '=', id).execute();
      await tickEventClock(trx);
    });
  }

  // --- instances ---

  async createInstance(input: InstanceInput, now = this.clock.now()): Promise<InstanceRow> {
    const row: InstanceRow = {
      id: newId('ins', now),
      tenantId: input.tenantId,
      name: input.name,
      zone: input.zone,
      locator: JSON.stringify(input.locator),
      agentId: input.agentId,
      offeringId: null,
      createdAt: now,
      offeringSetAt: null,
      scheduleOwner: null,
      scheduleState: null,
      scheduleTaskId: null,
      locatorClaim: input.locatorClaim ?? 'tenant',
    };
    await transact(this.db, async (trx) => {
      await trx.insertInto('instances').values(row).execute();
      await moveCount(trx, row.tenantId, 'instances', 1);
    });
    return row;
  }

  async getInstance(id: string): Promise<InstanceRow | undefined> {
    return INSTANCE_BY_ID.first(this.db, { id });
  }

  /** The instance with its offering and that offering's provider connection, in one read. */
  async instanceChain(id: string): Promise<CatalogChain> {
    return catalogChain(this.db, id);
  }

  /** The instances of `ids` that exist (a bounded batch). */
  async instancesByIds(ids: readonly string[]): Promise<Map<string, InstanceRow>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('instances')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** `search`: see {@link nameOrId}. */
  async listInstances(page: PageRequest, tenantId?: string, search?: string): Promise<Page<InstanceRow>> {
    return searchedList<InstanceRow>(this.db, 'instances', page, tenantId, search);
  }

  /**
   * `at`: when it was assigned, by the scheduler's clock; the RPO watch measures an instance
   * without restore points from there (null: from the instance's creation).
   */
  async setInstanceOffering(id: string, offeringId: string | null, at: number | null = null): Promise<void> {
    await transact(this.db, async (trx) => {
      const was = await offeringHeld(trx, id);
      await trx
        .updateTable('instances')
        .set({ offeringId, offeringSetAt: offeringId === null ? null : at })
        .where('id', '=', id)
        .execute();
      if (was) await offeringMoved(trx, was, offeringId);
      // The RPO watch reads instances' offerings: its change mark moves with them.
      await tickEventClock(trx);
    });
  }

  /** Whether the connection records the repository it reached. */
  async repositoryIdentityRecorded(trx: Transaction<Database>, providerId: string): Promise<boolean> {
    const provider = await trx
      .selectFrom('providers')
      .select('repositoryIdentity')
      .where('id', '=', providerId)
      .executeTakeFirst();
    return (provider?.repositoryIdentity ?? null) !== null;
  }

  /**
   * Records the repository a plugin reports its task's connection reached (in the report's transaction), only while the
   * connection records none (the first contact decides; a plugin that finds another one fails
   * instead, until an SP admin clears it). It is not an event anyone is shown: a tenant never
   * learns which repository holds its backups, and a replayed report changes nothing.
   */
  async recordRepositoryIdentity(trx: Transaction<Database>, providerId: string, identity: string): Promise<void> {
    await trx
      .updateTable('providers')
      .set({ repositoryIdentity: identity })
      .where('id', '=', providerId)
      .where('repositoryIdentity', 'is', null)
      .execute();
  }

  /**
   * Sets an instance's offering and schedule columns in `trx`. With `onlyIfTask`, only while the
   * instance still waits for that task (a compare-and-set: a newer request wins). True when written.
   */
  async setInstanceSchedule(
    trx: Transaction<Database>,
    id: string,
    change: { offeringId?: string | null; offeringSetAt?: number | null } & InstanceSchedule,
    onlyIfTask?: string,
  ): Promise<boolean> {
    let q = trx
      .updateTable('instances')
      .set({
        ...(change.offeringId !== undefined
          ? {
              offeringId: change.offeringId,
              offeringSetAt: change.offeringId === null ? null : (change.offeringSetAt ?? null),
            }
          : {}),
        scheduleOwner: change.owner,
        scheduleState: change.state,
        scheduleTaskId: change.taskId,
      })
      .where('id', '=', id);
    if (onlyIfTask !== undefined) q = q.where('scheduleTaskId', '=', onlyIfTask);
    const was = change.offeringId !== undefined ? await offeringHeld(trx, id) : undefined;
    const written = Number((await q.executeTakeFirst()).numUpdatedRows) === 1;
    if (written && change.offeringId !== undefined) {
      if (was) await offeringMoved(trx, was, change.offeringId);
      await tickEventClock(trx);
    }
    return written;
  }

  /** Refuses while a task of the instance is queued or held by an agent. */
  async deleteInstance(id: string): Promise<void> {
    const busy = await this.db
      .selectFrom('tasks')
      .select('id')
      .where('instanceId', '=', id)
      .where('state', 'in', ['queued', ...HELD_STATES])
      .executeTakeFirst();
    if (busy) throw new ConflictError(`instance ${id} has task ${busy.id} in progress`, 'instance_busy');
    const backup = await this.db.selectFrom('backups').select('id').where('instanceId', '=', id).executeTakeFirst();
    if (backup) throw new ConflictError(`instance ${id} still has backups; remove them first`, 'instance_has_backups');
    await transact(this.db, async (trx) => {
      const gone = await offeringHeld(trx, id);
      const r = await trx.deleteFrom('instances').where('id', '=', id).executeTakeFirst();
      if (gone && Number(r.numDeletedRows) === 1) {
        await moveCount(trx, gone.tenantId, 'instances', -1);
        await offeringMoved(trx, gone, null);
        await forgetNewest(trx, id);
      }
      await tickEventClock(trx);
    });
  }
}

/**
 * The instance's tenant and offering, its row locked on MySQL/MariaDB until `trx` ends (by its
 * key): what a change of its offering moves the tenant's kept count by (undefined: no such instance).
 */
async function offeringHeld(
  trx: Transaction<Database>,
  id: string,
): Promise<{ tenantId: string; offeringId: string | null } | undefined> {
  const q = trx.selectFrom('instances').select(['tenantId', 'offeringId']).where('id', '=', id);
  return (isMysql(trx) ? q.forUpdate() : q).executeTakeFirst();
}

/** Moves the tenant's kept count of instances with an offering as an instance's goes from `was` to `now`. */
async function offeringMoved(
  trx: Transaction<Database>,
  was: { tenantId: string; offeringId: string | null },
  now: string | null,
): Promise<void> {
  if ((was.offeringId === null) !== (now === null))
    await moveCount(trx, was.tenantId, 'protectedInstances', now === null ? -1 : 1);
}
