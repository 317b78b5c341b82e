/**
 * Which VolumeSnapshotClass snapshots a claim: a pure rule, facts in and a decision out.
 *
 * Per CSI driver, the class annotated `cairn.dev/is-snapshot-class: "true"`; a StorageClass may
 * name its class with `cairn.dev/volume-snapshot-class: <name>`, which wins (it must exist and be
 * of the claim's driver). No annotated class, or more than one, for a driver is an error that
 * names the driver and the classes found.
 */

export const IS_SNAPSHOT_CLASS = 'cairn.dev/is-snapshot-class';
export const VOLUME_SNAPSHOT_CLASS = 'cairn.dev/volume-snapshot-class';

export interface SnapshotClassFact {
  name: string;
  driver: string;
  annotations: Readonly<Record<string, string>>;
}

export interface StorageClassFact {
  name: string;
  provisioner: string;
  annotations: Readonly<Record<string, string>>;
}

export type ClassChoice =
  | { ok: true; className: string; driver: string; via: 'storage-class' | 'annotation' }
  | { ok: false; driver: string; message: string };

/**
 * The class for a claim of `storageClass` whose volume `driver` provisioned.
 *
 * @example
 * chooseSnapshotClass({ driver: 'hostpath.csi.k8s.io', storageClass, snapshotClasses })
 * // → { ok: true, className: 'csi-hostpath-snapclass', driver: 'hostpath.csi.k8s.io', via: 'annotation' }
 */
export function chooseSnapshotClass(facts: {
  driver: string;
  storageClass: StorageClassFact | undefined;
  snapshotClasses: readonly SnapshotClassFact[];
}): ClassChoice {
  const { driver, storageClass, snapshotClasses } = facts;
  const ofDriver = snapshotClasses.filter((c) => c.driver === driver);
  const named = storageClass?.annotations[VOLUME_SNAPSHOT_CLASS];
  if (named !== undefined) {
    const chosen = snapshotClasses.find((c) => c.name === named);
    if (!chosen)
      return {
        ok: false,
        driver,
        message: `StorageClass ${storageClass!.name} names VolumeSnapshotClass ${named} (${VOLUME_SNAPSHOT_CLASS}), which does not exist; classes of driver ${driver}: ${list(ofDriver)}`,
      };
    if (chosen.driver !== driver)
      return {
        ok: false,
        driver,
        message: `StorageClass ${storageClass!.name} names VolumeSnapshotClass ${named} (${VOLUME_SNAPSHOT_CLASS}), which is of driver ${chosen.driver}, not ${driver}`,
      };
    return { ok: true, className: named, driver, via: 'storage-class' };
  }
  const marked = ofDriver.filter((c) => c.annotations[IS_SNAPSHOT_CLASS] === 'true');
  if (marked.length === 1) return { ok: true, className: marked[0]!.name, driver, via: 'annotation' };
  const problem = marked.length === 0 ? 'no VolumeSnapshotClass' : `${marked.length} VolumeSnapshotClasses`;
  return {
    ok: false,
    driver,
    message: `driver ${driver}: ${problem} annotated ${IS_SNAPSHOT_CLASS}="true" (${marked.length ? `annotated: ${list(marked)}; ` : ''}classes of the driver: ${list(ofDriver)}); annotate exactly one, or name one on the StorageClass with ${VOLUME_SNAPSHOT_CLASS}`,
  };
}

function list(classes: readonly SnapshotClassFact[]): string {
  return classes.length ? classes.map((c) => c.name).join(', ') : 'none';
}
