import type { BackupRow } from '../../../store/schema.js';
import { iso, isoOrNull } from '../../views.js';

export const backupView = (b: BackupRow) => ({
  id: b.id,
  tenantId: b.tenantId,
  instanceId: b.instanceId,
  offeringId: b.offeringId,
  taskId: b.taskId,
  name: b.name,
  mode: b.mode,
  createdAt: iso(b.createdAt),
  recordedAt: iso(b.recordedAt),
  sizeBytes: b.sizeBytes,
  addedBytes: b.addedBytes,
  externalId: b.externalId,
  parentId: b.parentId,
  expiresAt: isoOrNull(b.expiresAt),
  deleteTaskId: b.deleteTaskId,
  vanishedAt: isoOrNull(b.vanishedAt),
});
