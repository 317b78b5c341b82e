import { SDK_API_VERSION, type PluginManifest } from '@cairn/plugin-sdk';

/**
 * What the plugin says about itself. The agent checks it before calling any of your code, and
 * routes tasks by `capabilities`. Keep `name` equal to the package.json `name`, and `apiVersion`
 * (plus `apiVersions`, if you list more) equal to the package.json `"cairn".apiVersions`.
 */
export const manifest: PluginManifest = {
  name: 'cairn-plugin-example',
  version: '0.1.0',
  apiVersion: SDK_API_VERSION,
  description: 'Backs a directory up by copying it into a store directory',
  capabilities: [
    // Operations: each needs its method in provider.ts.
    'backup',
    'restore',
    'delete-backup',
    'sync',
    // Traits: promises about how the operations behave.
    'incremental', // an INCREMENT on a parent stores only what changed (unchanged files are hard links)
    'restore-to-path', // restore writes the files under target.path
    'handles-chains', // every point stands alone, so deleting an increment's base is safe
    'host-paths', // the locator and restore target are paths on the agent's host, confined to its roots
  ],
  // JSON Schema of the provider connection's `config`, as the SP admin sets it.
  configSchema: {
    type: 'object',
    properties: {
      storeDir: { type: 'string', minLength: 1, description: 'directory that holds the restore points' },
    },
    required: ['storeDir'],
    additionalProperties: false,
  },
};
