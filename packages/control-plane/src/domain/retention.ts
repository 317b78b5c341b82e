/**
 * Keep-last retention: which of an instance's restore points to delete through the provider, and
 * the recorded time (`recordedAt`) that ranks them. Pure; the store feeds it the instance's
 * records and enqueues one delete-backup task per answer.
 */

/**
 * How far a provider's time may run ahead of the control plane's clock and still be taken as
 * "now": two hosts' clocks differ a little. A point dated further ahead is future-dated.
 */
export const PROVIDER_CLOCK_SKEW_MS = 5 * 60_000;

/** A record of an instance as the recorded-time rules weigh it. */
export interface RecordedPoint {
  recordedAt: number;
  /** Made by one of Cairn's backup tasks (not adopted by a sync). */
  made: boolean;
}

/**
 * The recorded time of a restore point a backup task of Cairn made at `now`: after every record
 * of the instance, whatever the clock says, so a clock stepped back never ranks a newer backup
 * below an older one.
 *
 * @example madeRecordedAt([{ recordedAt: 5000, made: true }], 1000) // → 5001
 */
export function madeRecordedAt(records: readonly Pick<RecordedPoint, 'recordedAt'>[], now: number): number {
  return records.reduce((t, r) => Math.max(t, r.recordedAt + 1), now);
}

/**
 * Whether a restore point the provider dated `providerTime` is future-dated at `now`: beyond the
 * skew allowance (a host whose clock was wrong). Only then does its recorded time depend on the
 * instance's other records (see {@link adoptedRecordedAt}).
 *
 * @example isFutureDated(Date.parse('2099-01-01'), 9000) // → true
 */
export function isFutureDated(providerTime: number, now: number): boolean {
  return providerTime > now + PROVIDER_CLOCK_SKEW_MS;
}

/**
 * The recorded time of a restore point a sync found (the provider dated it `providerTime`) at
 * `now`: the provider's time, never later than now. A point dated beyond the skew allowance is
 * future-dated (a host whose clock was wrong): it never outranks a point Cairn made, so it ranks
 * just below the instance's oldest one.
 *
 * @example adoptedRecordedAt([{ recordedAt: 5000, made: true }], Date.parse('2099-01-01'), 9000)
 * // → { recordedAt: 4999, futureDated: true }
 */
export function adoptedRecordedAt(
  records: readonly RecordedPoint[],
  providerTime: number,
  now: number,
): { recordedAt: number; futureDated: boolean } {
  if (!isFutureDated(providerTime, now)) return { recordedAt: Math.min(providerTime, now), futureDated: false };
  const oldestMade = records.reduce((t, r) => (r.made ? Math.min(t, r.recordedAt - 1) : t), now);
  return { recordedAt: oldestMade, futureDated: true };
}

export interface RetainedBackup {
  id: string;
  /** When the control plane recorded it, by the rules above: what ranks it. */
  recordedAt: number;
  /** The record this increment builds on; null for a full or an increment whose base is unknown. */
  parentId: string | null;
  mode: 'FULL' | 'INCREMENT' | string;
  /** When the provider said the point expires (epoch ms); null or absent: never. */
  expiresAt?: number | null;
}

export interface RetentionPolicy {
  /** How many of the newest restore points to keep; null or below 1: keep everything. */
  keepLast: number | null;
  /**
   * The plugin declares `handles-chains`: the backup system itself keeps (or merges) what a kept
   * increment needs, so a parent may be deleted through it like any other point.
   */
  handlesChains: boolean;
  /** When given, a point whose `expiresAt` is at or before it goes too, however new. */
  now?: number;
}

/** Newest first by recorded time; records of one millisecond are ordered by id (ids grow with time). */
export const newestFirst = (
  a: Pick<RetainedBackup, 'id' | 'recordedAt'>,
  b: Pick<RetainedBackup, 'id' | 'recordedAt'>,
) => b.recordedAt - a.recordedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The ids to delete, children before their parents (newest first), so a provider that refuses
 * to delete a point an increment still builds on never sees that order.
 *
 * The newest `keepLast` by `recordedAt` are kept, less those expired at `now`. Unless the plugin handles chains,
 * every ancestor of a kept increment is kept too, however old or expired: deleting it would leave
 * the kept one unrestorable.
 *
 * @example backupsToDelete([{id:'a',recordedAt:1,parentId:null,mode:'FULL'},{id:'b',recordedAt:2,parentId:'a',mode:'INCREMENT'}], {keepLast:1, handlesChains:false})
 * // → [] ('a' is the base of the kept 'b')
 */
export function backupsToDelete(backups: readonly RetainedBackup[], policy: RetentionPolicy): string[] {
  const { keepLast, now } = policy;
  const retains = keepLast !== null && Number.isInteger(keepLast) && keepLast >= 1;
  const expired = (b: RetainedBackup) => now !== undefined && b.expiresAt != null && b.expiresAt <= now;
  if (!retains && !backups.some(expired)) return [];
  const ordered = [...backups].sort(newestFirst);
  const keep = new Set((retains ? ordered.slice(0, keepLast) : ordered).filter((b) => !expired(b)).map((b) => b.id));
  if (!policy.handlesChains) {
    const byId = new Map(backups.map((b) => [b.id, b]));
    for (const id of [...keep]) {
      // Walk up the chain; the seen-set stops a (corrupt) cycle from looping.
      let parentId = byId.get(id)?.parentId ?? null;
      while (parentId !== null && !keep.has(parentId) && byId.has(parentId)) {
        keep.add(parentId);
        parentId = byId.get(parentId)!.parentId;
      }
    }
  }
  return ordered.filter((b) => !keep.has(b.id)).map((b) => b.id);
}
