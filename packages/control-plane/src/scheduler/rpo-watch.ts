import {
  rpoBreachesAfter,
  rpoDecision,
  rpoMinutesOf,
  rpoPassNeeded,
  type RpoFacts,
  type RpoPassMark,
} from '../domain/rpo.js';
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

/**
 * The longest the watch goes without reading its instances, whatever the store's change mark says:
 * a bound on how late a change that moved no mark would be seen (every path known moves it).
 */
export const RPO_FULL_PASS_MS = 10 * 60_000;

interface Watched {
  rpoMinutes: number;
  /** When the offering's SLA was set (the offering's creation for one set with it). */
  slaSetAt: number;
}

export interface RpoWatchDeps {
  /** The store's root handle (the watch's writes are transactions of their own). */
  root: Db;
  rpo: RpoRepository;
  events: EventRepository;
  log: Logger;
  /** The longest time between passes (default {@link RPO_FULL_PASS_MS}). */
  fullPassMs?: number;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * Raises `rpo.breached` once when an instance's newest restore point grows older than its
 * offering's rpoMinutes, and `rpo.met` once when it recovers, on every replica and across
 * restarts: each is written with the conditional write of `rpo_state` that records it, in one
 * transaction, and only the writer that wins that write raises the event.
 *
 * It reads its instances only when that can change an answer (see `rpoPassNeeded`): the store's
 * change mark (the event clock, which every change of what the watch reads moves in its own
 * transaction) is read by the scheduler's probe on every tick, and the earliest time any instance
 * can breach is kept from the last pass. An idle tick then costs the watch nothing, however many
 * instances it watches.
 */
export class RpoWatch {
  private last: RpoPassMark | undefined;

  private readonly root: Db;
  private readonly rpo: RpoRepository;
  private readonly events: EventRepository;
  private readonly log: Logger;
  private readonly fullPassMs: number;

  constructor(deps: RpoWatchDeps) {
    ({ root: this.root, rpo: this.rpo, events: this.events, log: this.log } = deps);
    this.fullPassMs = deps.fullPassMs ?? RPO_FULL_PASS_MS;
  }

  /**
   * Called on every tick of the replica holding the watch, with the store's change mark as read
   * before anything else this tick: a pass over the instances when one is needed.
   */
  async tick(now: number, changes: number, slaOfferings: () => Promise<readonly OfferingRow[]>): Promise<void> {
    if (!rpoPassNeeded(this.last, now, changes, this.fullPassMs)) return;
    // Unset while the pass runs: one that fails is made again on the next tick.
    this.last = undefined;
    const breachesAfter = await this.evaluate(await slaOfferings(), now);
    this.last = { at: now, changes, breachesAfter };
  }

  /** Forgets what the last pass knew (the duty moved away): the next tick makes a pass. */
  forget(): void {
    this.last = undefined;
  }

  /**
   * One pass at `now` over every instance of the SLA offerings that set rpoMinutes. Returns the
   * earliest time any of them not in breach breaches if nothing changes (Infinity: none can).
   */
  private async evaluate(slaOfferings: readonly OfferingRow[], now: number): Promise<number> {
    let breachesAfter = Infinity;
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
        const facts = this.facts(w, watched, now);
        if (rpoDecision(facts, w.breachedAt !== null) !== 'none') {
          // What it records moves the change mark, so the next tick reads afresh; so does what
          // made a fresh read decide otherwise. One that wrote nothing makes it read again anyway.
          if (!(await this.record(w.instanceId, ids, watched, now))) breachesAfter = -Infinity;
        } else if (w.breachedAt === null) {
          breachesAfter = Math.min(breachesAfter, rpoBreachesAfter(facts));
        }
      }
      if (page.length < PAGE) return breachesAfter;
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
  private async record(
    instanceId: string,
    ids: string[],
    watched: Map<string, Watched>,
    now: number,
  ): Promise<boolean> {
    return retryTransient(() =>
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
