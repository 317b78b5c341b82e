import { SDK_API_VERSION, type PluginManifest } from '@cairn/plugin-sdk';

export const manifest: PluginManifest = {
  name: '@cairn/plugin-restic',
  version: '0.1.0',
  apiVersion: SDK_API_VERSION,
  description: "File backups of paths on the agent's host into a restic repository (restic >= 0.14)",
  capabilities: [
    'backup',
    'restore',
    'restore-volume',
    'delete-backup',
    'list-offerings',
    'sync',
    'preflight',
    // Deletes only forget; the prune that frees their data (and locks the repository while it
    // runs) waits for the connection's prune schedule.
    'prune',
    // Every restic snapshot is complete on its own: forgetting a parent breaks no child.
    'handles-chains',
    // With --parent restic reads only changed files and stores only new data.
    'incremental',
    // A restore with target {path} writes each backed-up file at its absolute path below it.
    'restore-to-path',
    // Locators and restore targets are paths on the agent's host: the agent confines them to its
    // --roots, and so does the plugin, restoring through a staging directory.
    'host-paths',
    // Every operation checks restic's repository id against the one the connection recorded, and
    // only a preflight asked to initialise creates a repository.
    'repository-identity',
  ],
  configSchema: {
    type: 'object',
    properties: {
      binary: { type: 'string', minLength: 1, description: 'the restic executable (default: restic on PATH)' },
      cancelGraceMs: {
        type: 'integer',
        minimum: 0,
        maximum: 4000,
        description: 'after a cancel, how long restic may take to stop on SIGINT before it is killed (default 2000)',
      },
      lockWaitMs: {
        type: 'integer',
        minimum: 0,
        description: 'how long a command waits for a lock another restic holds on the repository (default 120000)',
      },
      minFreeBytes: {
        type: 'integer',
        minimum: 0,
        description: 'preflight: free space a local repository needs (default 1 GiB)',
      },
    },
    additionalProperties: false,
  },
};
