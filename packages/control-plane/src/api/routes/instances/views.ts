import type { ScheduleOwner, ScheduleState } from '../../../domain/provider-schedule.js';
import type { InstanceRow } from '../../../store/schema.js';
import { iso } from '../../views.js';

export const instanceView = (i: InstanceRow) => ({
  id: i.id,
  tenantId: i.tenantId,
  name: i.name,
  zone: i.zone,
  locator: JSON.parse(i.locator) as unknown,
  locatorSetBy: i.locatorClaim === 'sp' ? ('sp' as const) : ('tenant' as const),
  agentId: i.agentId,
  offeringId: i.offeringId,
  schedule:
    i.scheduleState === null || i.scheduleTaskId === null
      ? null
      : {
          owner: i.scheduleOwner as ScheduleOwner | null,
          state: i.scheduleState as ScheduleState,
          taskId: i.scheduleTaskId,
        },
  createdAt: iso(i.createdAt),
});
