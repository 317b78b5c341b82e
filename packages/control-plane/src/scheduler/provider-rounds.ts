import { ConflictError } from '../domain/errors.js';
import { SLA_PRIORITY } from '../domain/schedule.js';
import { intervalStart } from '../domain/sync.js';
import type { Logger } from '../logger.js';
import type { CatalogRepository } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import type { ProviderRow, TaskRow } from '../store/schema.js';
import { retryTransient } from './retry.js';

/** Work the control plane asks of every provider connection once per interval: a sync, a prune. */
export interface ProviderRound {
  /** What it is, for logs: `sync`, `prune`. */
  what: string;
  /** The schedule key of one connection's round (`sync:<provider>`). */
  key(providerId: string): string;
  intervalMs: number;
  /**
   * Whether the connection takes part this interval (its plugin, on the zone's live agents, can do
   * the work); all do when absent.
   */
  applies?(provider: ProviderRow): Promise<boolean>;
  /** Queues the work, at `priority`; `created: false` when one was still pending. */
  queue(provider: ProviderRow, tenantId: string, priority: number): Promise<{ task: TaskRow; created: boolean }>;
}

/** What the provider rounds are built from. */
export interface ProviderRoundsDeps {
  root: Db;
  schedules: ScheduleRepository;
  catalog: CatalogRepository;
  /** The SP's own tenant: this work concerns every tenant on the provider. */
  providerTenant: string;
  rounds: readonly ProviderRound[];
  log: Logger;
}

/**
 * Runs a {@link ProviderRound} for every provider connection once per interval of the scheduler's
 * clock. Intervals count from the epoch, so every replica sees the same ones; each is claimed as
 * a schedule fire (the round's key at the interval's start) before its task is queued, so two
 * replicas never queue two for one interval. Work still queued or running is left alone (the fire
 * is claimed, no second task is made).
 */
export class ProviderRounds {
  /**
   * Per round key, the interval known claimed (here or by another replica): a key whose interval
   * is still the same is not asked of the store again, so a tick with no round due reads only
   * the provider list.
   */
  private readonly claimed = new Map<string, number>();

  constructor(private readonly deps: ProviderRoundsDeps) {}

  /** One scheduler tick at `now`; `lastFires` reads the latest claimed fire of the keys given. */
  async tick(now: number, lastFires: (keys: string[]) => Promise<Map<string, number>>): Promise<void> {
    const rounds = this.deps.rounds.filter((r) => r.intervalMs > 0);
    if (rounds.length === 0) return;
    const providers = await this.deps.catalog.allProviders();
    const open = rounds.flatMap((round) => {
      const fireAt = intervalStart(now, round.intervalMs);
      return providers
        .map((provider) => ({ round, provider, fireAt, key: round.key(provider.id) }))
        .filter((r) => this.claimed.get(r.key) !== fireAt);
    });
    this.forgetGone(providers);
    if (open.length === 0) return;
    const last = await lastFires(open.map((r) => r.key));
    for (const { round, provider, fireAt, key } of open) {
      const previous = last.get(key);
      if (previous !== undefined && previous >= fireAt) {
        this.claimed.set(key, fireAt);
        continue;
      }
      const missed = previous === undefined ? 0 : Math.max(0, Math.round((fireAt - previous) / round.intervalMs) - 1);
      try {
        const outcome = await retryTransient(() => this.fire(round, provider, key, fireAt, missed, now));
        // A connection that does not take part now is looked at again next tick (its agent may come).
        if (outcome !== 'not taking part') this.claimed.set(key, fireAt);
      } catch (err) {
        // One provider (deleted meanwhile, say) must not keep the others from their round.
        this.deps.log.warn({ err, providerId: provider.id }, `periodic ${round.what} could not be queued`);
      }
    }
  }

  /** Keys of connections deleted since are dropped, so the map holds the current ones only. */
  private forgetGone(providers: readonly ProviderRow[]): void {
    if (this.claimed.size <= providers.length * this.deps.rounds.length) return;
    const keys = new Set(this.deps.rounds.flatMap((r) => providers.map((p) => r.key(p.id))));
    for (const key of this.claimed.keys()) if (!keys.has(key)) this.claimed.delete(key);
  }

  private async fire(
    round: ProviderRound,
    provider: ProviderRow,
    key: string,
    fireAt: number,
    missed: number,
    now: number,
  ): Promise<'queued' | 'claimed before' | 'not taking part'> {
    let outcome: 'queued' | 'claimed before' | 'not taking part' = 'queued';
    await inRequestTransaction(this.deps.root, async () => {
      if (!(await this.deps.schedules.claimFire(key, fireAt, missed, now))) {
        outcome = 'claimed before';
        return false;
      }
      // Claimed first, so two replicas never both ask; the claim is rolled back when the
      // connection does not take part, and it is looked at again next tick.
      if (round.applies && !(await round.applies(provider))) {
        outcome = 'not taking part';
        return false;
      }
      let taskId: string;
      try {
        const { task, created } = await round.queue(provider, this.deps.providerTenant, SLA_PRIORITY);
        taskId = created ? task.id : `${task.id} (still pending)`;
      } catch (err) {
        // A request queued one meanwhile: this interval has its task.
        if (!(err instanceof ConflictError)) throw err;
        taskId = 'queued meanwhile';
      }
      afterCommit(() =>
        this.deps.log.info(
          { providerId: provider.id, fireAt: new Date(fireAt).toISOString(), taskId },
          `periodic ${round.what}`,
        ),
      );
      return true;
    });
    return outcome;
  }
}
