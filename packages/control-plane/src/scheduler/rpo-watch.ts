import { rpoDecision, rpoMinutesOf, type RpoFacts } from '../domain/rpo.js';
import type { Logger } from '../logger.js';
import type { Sla } from '../store/catalog-repository.js';
import type { Db } from '../store/db.js';
import type { EventRepository } from '../store/event-repository.js';
import { afterCommit, inRequestTransaction } from '../store/request-scope.js';
import type { RpoRepository, WatchedInstance } from '../store/rpo-repository.js';
import type { OfferingRow } from '../store/schema.js';
import { retryTransient } from './retry.js';

/** Instances read per query. */
const PAGE = 500;

interface Watched {
  rpoMinutes: number;
  /** When the offering's SLA was set (the offering's creation for one set with it). */
  slaSetAt: number;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * Raises `rpo.breached` once when an instance's newest restore point grows older than its
 * offering's rpoMinutes, and `rpo.met` once when it recovers, on every replica and across
 * restarts: each is written with the conditional write of `rpo_state` that records it, in one
 * transaction, and only the writer that wins that write raises the event.
 */
export class RpoWatch {
  constructor(
    private readonly root: Db,
    private readonly rpo: RpoRepository,
    private readonly events: EventRepository,
    private readonly log: Logger,
  ) {}

  /** One pass at `now` over every instance of the SLA offerings that set rpoMinutes. */
  async evaluate(slaOfferings: readonly OfferingRow[], now: number): Promise<void> {
    const watched = new Map<string, Watched>();
    for (const o of slaOfferings) {
      const rpoMinutes = rpoMinutesOf(JSON.parse(o.sla!) as Partial<Sla>);
      if (rpoMinutes !== null) watched.set(o.id, { rpoMinutes, slaSetAt: o.slaSetAt ?? o.createdAt });
    }
    // No longer under an RPO: its breach is forgotten quietly (it was neither met nor missed).
    await this.rpo.forgetUnwatched(new Set(watched.keys()));
    const ids = [...watched.keys()];
    for (let after: string | null = null; ;) {
      const page = await this.rpo.watched(ids, after, PAGE);
      for (const w of page) {
        if (rpoDecision(this.facts(w, watched, now), w.breachedAt !== null) !== 'none') {
          await this.record(w.instanceId, ids, watched, now);
        }
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.instanceId;
    }
  }

  private facts(w: WatchedInstance, watched: Map<string, Watched>, now: number): RpoFacts {
    const o = watched.get(w.offeringId)!;
    return {
      rpoMinutes: o.rpoMinutes,
      lastBackupAt: w.lastBackupAt,
      watchedSince: Math.max(w.offeringSetAt ?? w.createdAt, o.slaSetAt),
      now,
    };
  }

  /**
   * Decides again on a fresh read inside the transaction (the page may be stale by then: a
   * backup landed, another replica acted), then makes the conditional write and its event.
   */
  private async record(instanceId: string, ids: string[], watched: Map<string, Watched>, now: number) {
    await retryTransient(() =>
      inRequestTransaction(this.root, async () => {
        const w = await this.rpo.watchedOne(instanceId, ids);
        if (!w) return false;
        const facts = this.facts(w, watched, now);
        const decision = rpoDecision(facts, w.breachedAt !== null);
        if (decision === 'breach') {
          if (
            !(await this.rpo.raise({
              instanceId,
              tenantId: w.tenantId,
              rpoMinutes: facts.rpoMinutes,
              lastBackupAt: w.lastBackupAt,
              breachedAt: now,
            }))
          )
            return false;
          await this.events.forInstance(
            {
              tenantId: w.tenantId,
              instanceId,
              type: 'rpo.breached',
              message:
                w.lastBackupAt === null
                  ? `instance ${instanceId} has no restore point, and its RPO of ${facts.rpoMinutes} minutes has passed`
                  : `the newest restore point of instance ${instanceId} (${iso(w.lastBackupAt)}) is older than its RPO of ${facts.rpoMinutes} minutes`,
              data: { rpoMinutes: facts.rpoMinutes, lastBackupAt: iso(w.lastBackupAt), breachedAt: iso(now) },
            },
            now,
          );
          afterCommit(() => this.log.info({ instanceId, rpoMinutes: facts.rpoMinutes }, 'rpo breached'));
          return true;
        }
        if (decision === 'recover') {
          const cleared = await this.rpo.clear(instanceId, w.breachedAt!);
          if (!cleared) return false;
          await this.events.forInstance(
            {
              tenantId: w.tenantId,
              instanceId,
              type: 'rpo.met',
              message: `instance ${instanceId} meets its RPO of ${facts.rpoMinutes} minutes again`,
              data: {
                rpoMinutes: facts.rpoMinutes,
                lastBackupAt: iso(w.lastBackupAt),
                breachedAt: iso(cleared.breachedAt),
                metAt: iso(now),
              },
            },
            now,
          );
          afterCommit(() => this.log.info({ instanceId, rpoMinutes: facts.rpoMinutes }, 'rpo met'));
          return true;
        }
        return false;
      }),
    );
  }
}
