import { ConflictError } from '../domain/errors.js';
import { SLA_PRIORITY } from '../domain/schedule.js';
import { intervalStart } from '../domain/sync.js';
import type { Logger } from '../logger.js';
import type { Operations } from '../service/operations.js';
import { syncScheduleKey } from '../service/schedules.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import type { ProviderRow } from '../store/schema.js';
import { retryTransient } from './retry.js';

/**
 * Syncs every provider connection once per interval of the scheduler's clock. Intervals count
 * from the epoch, so every replica sees the same ones; each is claimed as a schedule fire
 * (`sync:<provider>` at the interval's start) before its task is queued, so two replicas never
 * queue two syncs for one interval. A sync still queued or running is left alone (the fire is
 * claimed, no second task is made).
 */
export class PeriodicSync {
  constructor(
    private readonly root: Db,
    private readonly schedules: ScheduleRepository,
    private readonly catalog: CatalogRepository,
    private readonly operations: Operations,
    /** The SP's own tenant: a sync concerns every tenant on the provider. */
    private readonly providerTenant: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** One scheduler tick at `now`, given the latest claimed fire of every schedule key. */
  async tick(now: number, last: Map<string, number>): Promise<void> {
    if (this.intervalMs <= 0) return;
    const fireAt = intervalStart(now, this.intervalMs);
    for (const provider of await this.catalog.allProviders()) {
      const key = syncScheduleKey(provider.id);
      const previous = last.get(key);
      if (previous !== undefined && previous >= fireAt) continue;
      const missed = previous === undefined ? 0 : Math.max(0, Math.round((fireAt - previous) / this.intervalMs) - 1);
      try {
        await retryTransient(() => this.fire(provider, key, fireAt, missed, now));
      } catch (err) {
        // One provider (deleted meanwhile, say) must not keep the others from their sync.
        this.log.warn({ err, providerId: provider.id }, 'periodic sync could not be queued');
      }
    }
  }

  private async fire(provider: ProviderRow, key: string, fireAt: number, missed: number, now: number) {
    await inRequestTransaction(this.root, async () => {
      if (!(await this.schedules.claimFire(key, fireAt, missed, now))) return false;
      let taskId: string;
      try {
        const { task, created } = await this.operations.syncProvider(provider, this.providerTenant, SLA_PRIORITY);
        taskId = created ? task.id : `${task.id} (still pending)`;
      } catch (err) {
        // A request queued one meanwhile: this interval has its sync.
        if (!(err instanceof ConflictError)) throw err;
        taskId = 'queued meanwhile';
      }
      afterCommit(() =>
        this.log.info({ providerId: provider.id, fireAt: new Date(fireAt).toISOString(), taskId }, 'periodic sync'),
      );
      return true;
    });
  }
}
