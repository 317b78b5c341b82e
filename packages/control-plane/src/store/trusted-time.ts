import { sql } from 'kysely';

/**
 * When a restore point was made as far as the RPO watch trusts it: its createdAt, but never later
 * than when the control plane recorded it. A backup Cairn made keeps the clock's time of making
 * (its recorded time may run ahead after the clock was stepped back); a point a sync found dated
 * in the future counts from its recording, so it cannot make an instance look protected for ever.
 */
export const trustedTime = sql<number>`case when ${sql.ref('backups.recordedAt')} < ${sql.ref('backups.createdAt')} then ${sql.ref('backups.recordedAt')} else ${sql.ref('backups.createdAt')} end`;

/** `trustedTime` of one record, as written (the same rule). */
export function trustedAt(r: { createdAt: number; recordedAt: number }): number {
  return Math.min(Number(r.createdAt), Number(r.recordedAt));
}
