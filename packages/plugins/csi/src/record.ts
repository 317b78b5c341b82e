/**
 * The durable record of a backup lives on the cluster itself: the labels and annotations the plugin
 * writes on each VolumeSnapshot and, once ready, on its VolumeSnapshotContent (cluster-scoped and
 * `Retain`, so it outlives the namespace). Names are derived from the task id, so a retry of the
 * same task (an agent killed mid-backup) finds and adopts what the first attempt made.
 */
import { createHash } from 'node:crypto';
import type { SnapshotObject } from './client.js';

export const LABEL_BACKUP = 'cairn.dev/backup';
export const LABEL_RESTORE = 'cairn.dev/restore';
export const LABEL_CLONE_OF = 'cairn.dev/clone-of';
export const LABEL_RESTORED_FROM = 'cairn.dev/restored-from';
const A = 'cairn.dev/';

/** What one volume of a backup records (the annotations of its snapshot and content). */
export interface VolumeRecord {
  backupId: string;
  instanceId: string;
  namespace: string;
  claim: string;
  storageClass: string;
  snapshotClass: string;
  capacity: string;
  accessModes: string[];
  volumeMode: string;
  volumes: number;
  /** The claims of the whole backup, so that one whose snapshot and export are both gone is named. */
  claims: string[];
  createdAt: string;
}

export function hash(text: string, length = 12): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** The backup a task makes: `cairn-<12 hex of the task id>`. */
export function backupIdFor(taskId: string): string {
  return `cairn-${hash(taskId)}`;
}

/** External ids are `<namespace>/<backup id>`. */
export function externalIdOf(namespace: string, backupId: string): string {
  return `${namespace}/${backupId}`;
}

/** The backup id of an external id, or undefined when it is not one of ours. */
export function parseExternalId(externalId: string): string | undefined {
  const m = /^[a-z0-9-]{1,63}\/(cairn-[0-9a-f]{12})$/.exec(externalId);
  return m?.[1];
}

/** A VolumeSnapshot's name: the backup id and a hash of the claim (claim names run to 253). */
export function snapshotName(backupId: string, claim: string): string {
  return `${backupId}-${hash(claim, 8)}`;
}

/** The Retain clone of a snapshot class. */
export function cloneClassName(className: string): string {
  const name = `${className}-cairn-retain`;
  return name.length <= 253 ? name : `${className.slice(0, 220)}-${hash(className, 8)}-cairn-retain`;
}

export function recordMetadata(r: VolumeRecord): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  return {
    labels: { [LABEL_BACKUP]: r.backupId },
    annotations: {
      [`${A}instance-id`]: r.instanceId,
      [`${A}namespace`]: r.namespace,
      [`${A}claim`]: r.claim,
      [`${A}storage-class`]: r.storageClass,
      [`${A}snapshot-class`]: r.snapshotClass,
      [`${A}capacity`]: r.capacity,
      [`${A}access-modes`]: r.accessModes.join(','),
      [`${A}volume-mode`]: r.volumeMode,
      [`${A}volumes`]: String(r.volumes),
      [`${A}claims`]: r.claims.join(','),
      [`${A}created-at`]: r.createdAt,
    },
  };
}

/** The record an object carries, or undefined when it carries none (or a damaged one). */
export function readRecord(obj: SnapshotObject): VolumeRecord | undefined {
  const l = obj.metadata.labels ?? {};
  const a = obj.metadata.annotations ?? {};
  const backupId = l[LABEL_BACKUP];
  const volumes = Number(a[`${A}volumes`]);
  const fields = ['instance-id', 'namespace', 'claim', 'storage-class', 'snapshot-class', 'capacity', 'created-at'];
  if (!backupId || !Number.isInteger(volumes) || volumes < 1 || fields.some((f) => !a[`${A}${f}`])) return undefined;
  return {
    backupId,
    instanceId: a[`${A}instance-id`]!,
    namespace: a[`${A}namespace`]!,
    claim: a[`${A}claim`]!,
    storageClass: a[`${A}storage-class`]!,
    snapshotClass: a[`${A}snapshot-class`]!,
    capacity: a[`${A}capacity`]!,
    accessModes: (a[`${A}access-modes`] ?? 'ReadWriteOnce').split(',').filter(Boolean),
    volumeMode: a[`${A}volume-mode`] ?? 'Filesystem',
    volumes,
    claims: (a[`${A}claims`] ?? '').split(',').filter(Boolean),
    createdAt: a[`${A}created-at`]!,
  };
}

const RECORD_TAG = `${A}record=`;

/**
 * The tag of an export's restic snapshot that carries the volume's record (and the size of its
 * snapshot), so that a restore finds what to make when the cluster has lost the content: the
 * record's labels and annotations as JSON, base64url (a restic tag holds no comma).
 */
export function recordTag(r: VolumeRecord, restoreSize: number): string {
  const { labels, annotations } = recordMetadata(r);
  const body = { labels, annotations: { ...annotations, [`${A}restore-size`]: String(restoreSize) } };
  return `${RECORD_TAG}${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
}

/** The record a restic snapshot's tags carry, or undefined when they carry none (or a damaged one). */
export function readRecordTag(tags: readonly string[]): { record: VolumeRecord; restoreSize: number } | undefined {
  const tag = tags.find((t) => t.startsWith(RECORD_TAG));
  if (!tag) return undefined;
  try {
    const metadata = JSON.parse(Buffer.from(tag.slice(RECORD_TAG.length), 'base64url').toString('utf8')) as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    const record = readRecord({ metadata: { name: '', ...metadata } });
    return record && { record, restoreSize: bytesOf(Number(metadata.annotations?.[`${A}restore-size`]) || 0) };
  } catch {
    return undefined;
  }
}

/** One backup as the contents found for it show it. */
export interface HeldBackup {
  backupId: string;
  volumes: { record: VolumeRecord; content: SnapshotObject }[];
  /** Every volume it names is there and ready. */
  complete: boolean;
}

/** Groups labelled VolumeSnapshotContents into backups. */
export function groupBackups(contents: readonly SnapshotObject[]): HeldBackup[] {
  const byId = new Map<string, HeldBackup>();
  for (const content of contents) {
    const record = readRecord(content);
    if (!record) continue;
    const held = byId.get(record.backupId) ?? { backupId: record.backupId, volumes: [], complete: false };
    held.volumes.push({ record, content });
    byId.set(record.backupId, held);
  }
  for (const held of byId.values()) {
    const want = held.volumes[0]!.record.volumes;
    held.complete =
      held.volumes.length === want &&
      held.volumes.every((v) => v.content.status?.readyToUse === true && !v.content.metadata.deletionTimestamp);
    held.volumes.sort((a, b) => a.record.claim.localeCompare(b.record.claim));
  }
  return [...byId.values()];
}

/** Bytes of a restoreSize as the API gives it (an int64 or a quantity string). */
export function bytesOf(size: number | string | undefined): number {
  if (typeof size === 'number') return Math.max(0, Math.floor(size));
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(size ?? '');
  if (!m) return 0;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}
