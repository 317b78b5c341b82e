import { SDK_API_VERSION, type PluginManifest } from '@cairn/plugin-sdk';

export const manifest: PluginManifest = {
  name: '@cairn/plugin-dummy',
  version: '0.1.0',
  apiVersion: SDK_API_VERSION,
  description: 'Simulated backup and restore with progress steps, configurable duration, size and failure',
  capabilities: [
    'backup',
    'restore',
    'restore-volume',
    'delete-backup',
    'list-offerings',
    'sync',
    'preflight',
    'power-state',
    'restore-requires-stopped',
    'configure-schedule',
    'deconfigure-schedule',
    'provider-schedules',
    // Appends to <storeDir>/prunes.log: tests count the control plane's prune schedule with it.
    'prune',
  ],
  configSchema: {
    type: 'object',
    properties: {
      durationMs: { type: 'integer', minimum: 0, description: 'how long one operation takes' },
      sizeBytes: { type: 'integer', minimum: 0, description: 'size of each simulated backup' },
      steps: { type: 'integer', minimum: 1, maximum: 1000, description: 'progress reports per operation' },
      failCode: { type: 'string', description: 'when set, operations fail with this code' },
      failMessage: { type: 'string' },
      progressMessage: { type: 'string', description: 'said after the step in every progress report' },
      failAt: { enum: ['start', 'end'], description: 'fail before the first or after the last step' },
      storeDir: { type: 'string', minLength: 1, description: 'directory of restore points, one JSON file each' },
      failDeletes: { type: 'boolean', description: 'when true, delete-backup fails with DELETE_REFUSED' },
      syncGarbage: { type: 'boolean', description: 'TEST ONLY: when true, sync answers a malformed listing' },
      syncHoldMs: {
        type: 'integer',
        minimum: 0,
        description: 'TEST ONLY: sync takes its listing, then holds it this long before answering',
      },
      powerState: {
        enum: ['running', 'stopped'],
        description: 'power state of an instance without a file <storeDir>/power/<instanceId> (default stopped)',
      },
      providerSchedules: {
        type: 'boolean',
        description:
          'when true, configure-schedule keeps <storeDir>/schedules/<instanceId>.json and runs the clock (managed)',
      },
      failSchedules: {
        type: 'boolean',
        description: 'when true, configure-schedule and deconfigure-schedule fail with SCHEDULE_REFUSED',
      },
      failPreflight: {
        enum: ['config-valid', 'store-writable'],
        description: 'preflight answers this check failed, with advice',
      },
      preflightLeak: {
        type: 'boolean',
        description: 'TEST ONLY: when true, preflight puts the credentials in a message (the agent blanks them)',
      },
    },
    additionalProperties: false,
  },
};
