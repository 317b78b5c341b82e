/**
 * @cairn/plugin-csi: protects the PersistentVolumeClaims of a Kubernetes namespace (or a label
 * selection of them) with CSI volume snapshots, taken through a `deletionPolicy: Retain` clone of
 * the snapshot class chosen per driver, and restores them as new claims into the same or another
 * namespace.
 *
 * Connection: `credentials.kubeconfig` (the path of a kubeconfig on the agent host); config
 * `{pollIntervalMs = 1000, readyTimeoutS = 600}`. Locator: `{namespace, selector?}`. Restore
 * target: `{namespace}`.
 */
import { definePlugin } from '@cairn/plugin-sdk';
import { manifest } from './manifest.js';
import { createCsiProvider } from './provider.js';

export { manifest } from './manifest.js';
export { chooseSnapshotClass, IS_SNAPSHOT_CLASS, VOLUME_SNAPSHOT_CLASS, type ClassChoice } from './classes.js';

const plugin = definePlugin({ manifest, createProvider: (connection) => createCsiProvider(connection) });
export default plugin;
