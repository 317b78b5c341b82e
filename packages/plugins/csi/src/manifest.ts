import { SDK_API_VERSION, type PluginManifest } from '@cairn/plugin-sdk';

export const manifest: PluginManifest = {
  name: '@cairn/plugin-csi',
  version: '0.1.0',
  apiVersion: SDK_API_VERSION,
  description:
    "Kubernetes PersistentVolumeClaims protected by CSI volume snapshots through a Retain clone of each driver's snapshot class",
  capabilities: ['backup', 'restore', 'delete-backup', 'list-offerings', 'sync', 'preflight', 'sp-locators'],
  configSchema: {
    type: 'object',
    properties: {
      pollIntervalMs: {
        type: 'integer',
        minimum: 10,
        maximum: 60000,
        description: 'how often to look at snapshots and claims while waiting (default 1000)',
      },
      readyTimeoutS: {
        type: 'integer',
        minimum: 1,
        maximum: 86400,
        description: 'how long snapshots may take to become ready, or restored claims to bind (default 600)',
      },
      export: {
        type: 'object',
        description:
          "the data mover of exports: backups of the offering snapshots+export are exported into the restic repository of the connection's exportTo (a @cairn/plugin-restic connection of the zone) through pods of this image",
        properties: {
          image: { type: 'string', description: 'a restic image (default restic/restic:0.14.0)' },
        },
        additionalProperties: false,
      },
      primer: {
        type: 'object',
        description:
          'the preflight writes data into a claim of this StorageClass in this namespace, snapshots it, restores it and compares',
        properties: {
          storageClass: { type: 'string' },
          namespace: { type: 'string' },
          image: { type: 'string', description: 'a busybox image for the primer pods (default busybox:1.36)' },
        },
        required: ['storageClass', 'namespace'],
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
};
