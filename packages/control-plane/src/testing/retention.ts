import { systemClock } from '../clock.js';
import type { Db } from '../store/db.js';
import { RetentionRepository, type RetentionDeps } from '../store/retention-repository.js';
import { ScheduleRepository } from '../store/schedule-repository.js';

/** The retention repository the store tests build over their own repositories, on the system clock. */
export function retentionOver(db: Db, parts: Pick<RetentionDeps, 'backups' | 'tasks' | 'agents' | 'events'>) {
  return new RetentionRepository({ db, clock: systemClock, ...parts, schedules: new ScheduleRepository(db) });
}
