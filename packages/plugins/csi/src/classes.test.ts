import { describe, expect, it } from 'vitest';
import { chooseSnapshotClass, IS_SNAPSHOT_CLASS, VOLUME_SNAPSHOT_CLASS, type SnapshotClassFact } from './classes.js';

const HOSTPATH = 'hostpath.csi.k8s.io';
const CEPH = 'rbd.csi.ceph.com';
const marked = { [IS_SNAPSHOT_CLASS]: 'true' };
const klass = (name: string, driver: string, annotations: Record<string, string> = {}): SnapshotClassFact => ({
  name,
  driver,
  annotations,
});
const sc = (annotations: Record<string, string> = {}) => ({ name: 'fast', provisioner: HOSTPATH, annotations });

describe('chooseSnapshotClass', () => {
  const cases: {
    title: string;
    classes: SnapshotClassFact[];
    storageClass?: ReturnType<typeof sc>;
    want: { className: string; via: string } | RegExp;
  }[] = [
    {
      title: 'the one annotated class of the driver',
      classes: [klass('plain', HOSTPATH), klass('cairn', HOSTPATH, marked), klass('ceph', CEPH, marked)],
      want: { className: 'cairn', via: 'annotation' },
    },
    {
      title: 'an annotation other than "true" does not count',
      classes: [klass('a', HOSTPATH, { [IS_SNAPSHOT_CLASS]: 'yes' })],
      want: /^driver hostpath\.csi\.k8s\.io: no VolumeSnapshotClass annotated .*classes of the driver: a\)/,
    },
    {
      title: 'no class of the driver at all',
      classes: [klass('ceph', CEPH, marked)],
      want: /^driver hostpath\.csi\.k8s\.io: no VolumeSnapshotClass annotated .*classes of the driver: none\)/,
    },
    {
      title: 'another driver’s annotated class is not used',
      classes: [klass('plain', HOSTPATH), klass('ceph', CEPH, marked)],
      want: /no VolumeSnapshotClass annotated .*classes of the driver: plain\)/,
    },
    {
      title: 'two annotated classes of the driver fail, naming both',
      classes: [klass('one', HOSTPATH, marked), klass('two', HOSTPATH, marked)],
      want: /^driver hostpath\.csi\.k8s\.io: 2 VolumeSnapshotClasses annotated .*annotated: one, two; classes of the driver: one, two\)/,
    },
    {
      title: 'the StorageClass annotation wins over the annotated class',
      classes: [klass('marked', HOSTPATH, marked), klass('named', HOSTPATH)],
      storageClass: sc({ [VOLUME_SNAPSHOT_CLASS]: 'named' }),
      want: { className: 'named', via: 'storage-class' },
    },
    {
      title: 'the StorageClass annotation wins even when two are annotated',
      classes: [klass('one', HOSTPATH, marked), klass('two', HOSTPATH, marked)],
      storageClass: sc({ [VOLUME_SNAPSHOT_CLASS]: 'two' }),
      want: { className: 'two', via: 'storage-class' },
    },
    {
      title: 'a StorageClass naming a class that does not exist fails',
      classes: [klass('marked', HOSTPATH, marked)],
      storageClass: sc({ [VOLUME_SNAPSHOT_CLASS]: 'gone' }),
      want: /^StorageClass fast names VolumeSnapshotClass gone .*does not exist; classes of driver hostpath\.csi\.k8s\.io: marked$/,
    },
    {
      title: 'a StorageClass naming a class of another driver fails',
      classes: [klass('marked', HOSTPATH, marked), klass('ceph', CEPH)],
      storageClass: sc({ [VOLUME_SNAPSHOT_CLASS]: 'ceph' }),
      want: /which is of driver rbd\.csi\.ceph\.com, not hostpath\.csi\.k8s\.io$/,
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const got = chooseSnapshotClass({ driver: HOSTPATH, storageClass: c.storageClass, snapshotClasses: c.classes });
      if (c.want instanceof RegExp) {
        expect(got.ok).toBe(false);
        expect(got.ok ? '' : got.message).toMatch(c.want);
      } else expect(got).toEqual({ ok: true, driver: HOSTPATH, ...c.want });
    });
});
