/**
 * Keep-last retention: which of an instance's restore points to delete through the provider.
 * Pure; the store feeds it the instance's records and enqueues one delete-backup task per answer.
 */
export interface RetainedBackup {
  id: string;
  createdAt: number;
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

/** Newest first; records made in one millisecond are ordered by id (ids grow with time). */
const newestFirst = (a: RetainedBackup, b: RetainedBackup) =>
  b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The ids to delete, children before their parents (newest first), so a provider that refuses
 * to delete a point an increment still builds on never sees that order.
 *
 * The newest `keepLast` are kept, less those expired at `now`. Unless the plugin handles chains,
 * every ancestor of a kept increment is kept too, however old or expired: deleting it would leave
 * the kept one unrestorable.
 *
 * @example backupsToDelete([{id:'a',createdAt:1,parentId:null,mode:'FULL'},{id:'b',createdAt:2,parentId:'a',mode:'INCREMENT'}], {keepLast:1, handlesChains:false})
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
