import { setImmediate } from 'node:timers/promises';
import { historyCuts, taskForgettable, type HistoryCuts, type HistoryLimits } from '../domain/history.js';
import { intervalStart } from '../domain/sync.js';
import type { Logger } from '../logger.js';
import type { HistoryLog, HistoryRepository } from '../store/history-repository.js';
import { firstIdAt } from '../store/ids.js';
import { retryTransient } from './retry.js';

/** One pass over the history per this interval of the scheduler's clock (and one mark). */
export const HISTORY_INTERVAL_MS = 10 * 60 * 1000;
/** Ids of a log one delete covers. */
export const HISTORY_ROWS_PER_DELETE = 2000;
/** Tasks read (and at most forgotten) per statement. */
export const HISTORY_TASKS_PER_DELETE = 500;
/** Statements one scheduler tick may make: the rest of a pass waits for the next tick. */
export const HISTORY_STATEMENTS_PER_TICK = 20;

/** What the history sweep is built from. */
export interface HistoryDeps {
  history: HistoryRepository;
  limits: HistoryLimits;
  log: Logger;
  /** Told of the rows each delete forgot (a metric). */
  forgot?: (what: 'events' | 'progress' | 'tasks', rows: number) => void;
  /** How much one statement and one tick do (defaults above; a test makes them small). */
  batches?: { rowsPerDelete: number; tasksPerDelete: number; statementsPerTick: number };
}

/** The pass under way: its cuts, and where each walk stands. */
interface Pass {
  cuts: HistoryCuts;
  /** The next walk to do: the logs, then the tasks. */
  step: 'events' | 'progress' | 'tasks';
  /** Where the log walk under way stands (the last id done). */
  after: number;
  /** Where the progress walk starts once the event walk is done. */
  progressFrom: number;
  /** Where the task walk stands (the last id read). */
  taskAfter: string;
  forgotten: { events: number; progress: number; tasks: number };
}

/**
 * Keeps the history of the control plane's work within the service provider's limits: ended
 * tasks (with their progress reports) some days after they ended, progress reports of ended
 * tasks, and the event log. Once per interval of the scheduler's clock a replica claims the pass
 * by writing its mark (the newest ids at that time), then forgets a bounded number of ranges
 * per tick, so a backlog of millions never holds up the schedules or, on SQLite, the requests.
 * A replica that stops mid-pass leaves the rest to the next pass (each delete is idempotent).
 *
 * Nothing queued or held by an agent is forgotten, nor what the limits keep. Restore points,
 * backup jobs and their run history have their own retention and are not touched.
 */
export class HistorySweep {
  private pass: Pass | undefined;
  /** The interval whose pass is known claimed: until the next begins a tick asks nothing. */
  private claimedInterval: number | undefined;

  private readonly batches: NonNullable<HistoryDeps['batches']>;

  constructor(private readonly deps: HistoryDeps) {
    this.batches = deps.batches ?? {
      rowsPerDelete: HISTORY_ROWS_PER_DELETE,
      tasksPerDelete: HISTORY_TASKS_PER_DELETE,
      statementsPerTick: HISTORY_STATEMENTS_PER_TICK,
    };
  }

  /** Whether a pass is under way (its next tick goes on with it). */
  get passing(): boolean {
    return this.pass !== undefined;
  }

  /** One scheduler tick at `now`. */
  async tick(now: number): Promise<void> {
    const { history } = this.deps;
    if (!this.pass) {
      const at = intervalStart(now, HISTORY_INTERVAL_MS);
      if (this.claimedInterval === at) return;
      const claimed = await retryTransient(() => history.mark(at, now));
      this.claimedInterval = at;
      if (!claimed) return;
      const { limits } = this.deps;
      const marks = await history.marksAtOrBefore([now - limits.eventMs, now - limits.progressMs]);
      const cuts = historyCuts(marks, now, limits);
      await history.forgetMarks(cuts.marksBefore, HISTORY_INTERVAL_MS);
      const state = await history.state();
      this.pass = {
        cuts,
        step: 'events',
        after: state.eventsThrough,
        progressFrom: state.progressThrough,
        taskAfter: '',
        forgotten: { events: 0, progress: 0, tasks: 0 },
      };
    }
    const pass = this.pass;
    for (let statements = 0; statements < this.batches.statementsPerTick; statements++) {
      if (statements > 0) await setImmediate(); // SQLite: the requests get a turn between deletes
      if (!(await this.step(pass))) {
        this.pass = undefined;
        const { events, progress, tasks } = pass.forgotten;
        if (events + progress + tasks > 0) this.deps.log.info(pass.forgotten, 'history forgotten');
        return;
      }
    }
  }

  /** One statement of the pass; false when the pass is done. */
  private async step(pass: Pass): Promise<boolean> {
    const { history } = this.deps;
    if (pass.step === 'events' || pass.step === 'progress') {
      const log: HistoryLog = pass.step;
      const through = log === 'events' ? pass.cuts.eventsThrough : pass.cuts.progressThrough;
      // Past a gap of ids (a log already forgotten there, or never written) in one read.
      const next = pass.after < through ? await history.nextId(log, pass.after, through) : undefined;
      if (next === undefined) {
        if (log === 'events') {
          pass.step = 'progress';
          pass.after = pass.progressFrom;
        } else pass.step = 'tasks';
        return true;
      }
      const end = Math.min(through, next - 1 + this.batches.rowsPerDelete);
      const n = await (log === 'events'
        ? history.forgetEvents(pass.after, end)
        : history.forgetProgress(pass.after, end));
      pass.forgotten[log] += n;
      this.deps.forgot?.(log, n);
      pass.after = end;
      return true;
    }
    const below = firstIdAt('tsk', pass.cuts.tasksEndedBefore);
    const page = await history.tasksBetween(pass.taskAfter, below, this.batches.tasksPerDelete);
    if (page.length === 0) return false;
    pass.taskAfter = page[page.length - 1]!.id;
    const ids = page.filter((t) => taskForgettable(t, pass.cuts.tasksEndedBefore)).map((t) => t.id);
    const n = await history.forgetTasks(ids, pass.cuts.tasksEndedBefore);
    pass.forgotten.tasks += n;
    this.deps.forgot?.('tasks', n);
    return true;
  }
}
