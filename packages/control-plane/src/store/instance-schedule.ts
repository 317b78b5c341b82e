import type { InstanceSchedule, ScheduleOwner, ScheduleState } from '../domain/provider-schedule.js';
import type { InstanceRow } from './schema.js';

/** An instance's schedule columns, typed. */
export function scheduleOf(i: InstanceRow): InstanceSchedule {
  return {
    owner: i.scheduleOwner as ScheduleOwner | null,
    state: i.scheduleState as ScheduleState | null,
    taskId: i.scheduleTaskId,
  };
}
