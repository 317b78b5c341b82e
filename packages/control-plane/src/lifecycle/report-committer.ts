import type { Report } from '../domain/report-outcome.js';
import type { Logger } from '../logger.js';
import { outsideRequest } from '../store/request-scope.js';
import type { ReportBatch, Reports } from './reports.js';

export interface ReportCommitterOptions {
  reports: Pick<Reports, 'applyTick'>;
  /**
   * Reports per transaction at most (a session's batch is never split): SQLite runs a
   * transaction on the event loop from start to end, so its ticks stay short.
   */
  maxReports: number;
  log?: Logger;
}

interface Waiting extends ReportBatch {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Where every agent session hands in its reports: what all sessions handed in during one turn of
 * the event loop is applied in ONE transaction (`Reports.applyTick`), and each session's promise
 * settles only after that commit, so a session acknowledges nothing that is not stored. One
 * transaction runs at a time; the loop gets a turn between two.
 *
 * Isolation: when a shared transaction fails (a poison report: an exception while applying one),
 * each session's batch is applied again in a transaction of its own, so only the culprit's batch
 * fails (its session is closed; the agent resends; the store dedupes) and the others commit.
 */
export class ReportCommitter {
  private waiting: Waiting[] = [];
  private running = false;
  private readonly reports: Pick<Reports, 'applyTick'>;
  private readonly maxReports: number;
  private readonly log: Logger | undefined;

  constructor({ reports, maxReports, log }: ReportCommitterOptions) {
    this.reports = reports;
    this.maxReports = Math.max(1, maxReports);
    this.log = log;
  }

  /** Resolves once `reports` are committed (with whatever else the tick carried); rejects if they failed. */
  submit(agentId: string, reports: Report[]): Promise<void> {
    if (reports.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ agentId, reports, resolve, reject });
      if (this.running) return;
      this.running = true;
      // The sessions whose frames arrived in this turn of the loop join the same tick; the loop
      // belongs to no request.
      outsideRequest(() => setImmediate(() => void this.loop()));
    });
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        await this.commit(this.take());
        // Sockets and HTTP requests get their turn between two transactions.
        if (this.waiting.length > 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
    }
  }

  /** The next tick: whole batches in the order they came, up to `maxReports` (at least one batch). */
  private take(): Waiting[] {
    let n = 0;
    let i = 0;
    while (i < this.waiting.length && (i === 0 || n + this.waiting[i]!.reports.length <= this.maxReports)) {
      n += this.waiting[i]!.reports.length;
      i++;
    }
    return this.waiting.splice(0, i);
  }

  private async commit(tick: Waiting[]): Promise<void> {
    try {
      await this.reports.applyTick(tick);
      for (const w of tick) w.resolve();
      return;
    } catch (err) {
      if (tick.length === 1) return tick[0]!.reject(err);
      this.log?.warn(
        { err, batches: tick.length },
        'a shared report transaction failed; applying each session’s batch on its own',
      );
    }
    for (const w of tick) {
      try {
        await this.reports.applyTick([w]);
        w.resolve();
      } catch (err) {
        w.reject(err);
      }
    }
  }
}
