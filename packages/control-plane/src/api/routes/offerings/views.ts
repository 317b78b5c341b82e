import type { OfferingRow } from '../../../store/schema.js';
import { iso } from '../../views.js';

export const offeringView = (o: OfferingRow) => ({
  id: o.id,
  tenantId: o.tenantId,
  name: o.name,
  description: o.description,
  zone: o.zone,
  providerId: o.providerId,
  externalId: o.externalId,
  allowAdhoc: o.allowAdhoc === 1,
  allowUserSchedules: o.allowUserSchedules === 1,
  minUserScheduleIntervalS: o.minUserScheduleIntervalS,
  sla: o.sla ? (JSON.parse(o.sla) as unknown) : null,
  createdAt: iso(o.createdAt),
});
