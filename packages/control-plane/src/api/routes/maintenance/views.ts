import { scopeFields } from '../../../domain/maintenance.js';
import type { MaintenanceState } from '../../../service/maintenance.js';
import type { Audience } from '../../audience.js';
import { isoOrNull } from '../../views.js';

export const maintenanceView = (m: MaintenanceState, to: Audience) => ({
  ...scopeFields(m.scope),
  enabled: m.enabled,
  message: m.message,
  runningBackups: m.runningBackups,
  runningOther: m.runningOther,
  ready: m.ready,
  setBy: to.spAdmin ? m.setBy : null,
  setAt: isoOrNull(m.setAt),
  source: m.source,
});
