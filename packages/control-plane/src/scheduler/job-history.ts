import type { RunHistoryLimits } from '../domain/job-run.js';
import { intervalStart } from '../domain/sync.js';
import type { Logger } from '../logger.js';
import type { Db } from '../store/db.js';
import { RUN_PRUNE_BATCH, type JobRepository } from '../store/job-repository.js';
import { inRequestTransaction } from '../store/request-scope.js';
import type { ScheduleRepository } from '../store/schedule-repository.js';
import { retryTransient } from './retry.js';

/** The schedule key under which each interval's pass over the run history is claimed. */
export const JOB_HISTORY_KEY = 'job-history';
/** One pass over every job's run history per this interval of the scheduler's clock. */
export const JOB_HISTORY_INTERVAL_MS = 10 * 60 * 1000;
/** Jobs read per query of the walk. */
const JOBS_PER_PAGE = 100;
/** Delete transactions one scheduler tick may make: the rest of a pass waits for the next tick. */
const BATCHES_PER_TICK = 50;

/** What the job-history sweep is built from. */
export interface JobHistoryDeps {
  root: Db;
  schedules: ScheduleRepository;
  jobs: JobRepository;
  limits: RunHistoryLimits;
  log: Logger;
}

/**
 * Keeps backup job run history within the service provider's limits (CAIRN_JOB_RUNS_KEEP runs per
 * job, none older than CAIRN_JOB_RUNS_MAX_AGE_DAYS): once per interval of the scheduler's clock a
 * replica claims the pass (a schedule fire, as provider rounds do), then walks the jobs that ran,
 * a bounded number of delete batches per tick, so a large backlog never holds up the schedules.
 * A replica that stops mid-pass leaves the rest to the next interval's pass (deletes are idempotent).
 */
export class JobHistorySweep {
  /** The walk of the pass under way: the last job whose history is done. */
  private pass: { after: string; forgotten: number } | undefined;
  /**
   * The interval whose pass is known claimed (by this replica or another): until the next one
   * begins a tick asks nothing of the store.
   */
  private claimedInterval: number | undefined;

  constructor(private readonly deps: JobHistoryDeps) {}

  /** One scheduler tick at `now`; `lastFires` reads the latest claimed fire of the keys given. */
  async tick(now: number, lastFires: (keys: string[]) => Promise<Map<string, number>>): Promise<void> {
    if (!this.pass) {
      const fireAt = intervalStart(now, JOB_HISTORY_INTERVAL_MS);
      if (this.claimedInterval === fireAt) return;
      const previous = (await lastFires([JOB_HISTORY_KEY])).get(JOB_HISTORY_KEY);
      if (previous !== undefined && previous >= fireAt) {
        this.claimedInterval = fireAt;
        return;
      }
      const claimed = await retryTransient(() =>
        inRequestTransaction(this.deps.root, () => this.deps.schedules.claimFire(JOB_HISTORY_KEY, fireAt, 0, now)),
      );
      // Claimed here or by another replica meanwhile: either way this interval's pass is taken.
      this.claimedInterval = fireAt;
      if (!claimed) return;
      this.pass = { after: '', forgotten: 0 };
    }
    const pass = this.pass;
    let batches = 0;
    for (;;) {
      const ids = await this.deps.jobs.jobsThatRan(pass.after, JOBS_PER_PAGE);
      if (ids.length === 0) break;
      for (const id of ids) {
        for (;;) {
          if (batches >= BATCHES_PER_TICK) return;
          batches++;
          const n = await this.deps.jobs.forgetRuns(id, this.deps.limits, now);
          pass.forgotten += n;
          if (n < RUN_PRUNE_BATCH) break;
        }
        pass.after = id;
      }
    }
    this.pass = undefined;
    if (pass.forgotten > 0) this.deps.log.info({ runs: pass.forgotten }, 'backup job run history pruned');
  }
}
