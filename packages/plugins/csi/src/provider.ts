import type { Provider, ProviderConnection } from '@cairn/plugin-sdk';
import { backup, type OperationEnv } from './backup.js';
import { deleteBackup, preflight, sync } from './catalog.js';
import { Kube } from './client.js';
import { OFFERINGS, readConnection } from './config.js';
import { restore } from './restore.js';

/**
 * The connection is read at the first operation, not here, so that a bad one fails that task
 * with the field it names (INVALID_CONFIG) rather than the plugin's construction.
 */
export function createCsiProvider(connection: ProviderConnection, now: () => number = Date.now): Provider {
  const env = (): OperationEnv => {
    const settings = readConnection(connection);
    return { kube: new Kube(settings.kubeconfig), settings, now };
  };
  return {
    backup: (req, ctx) => backup(env(), req, ctx),
    restore: (req, ctx) => restore(env(), req, ctx),
    deleteBackup: (req, ctx) => deleteBackup(env(), req, ctx),
    sync: (req, ctx) => sync(env(), req, ctx),
    preflight: (req, ctx) => preflight(env(), req, ctx),
    // What an offering may name as its externalId; the connection is read all the same.
    listOfferings: () => {
      env();
      return Promise.resolve(OFFERINGS.map((o) => ({ ...o })));
    },
  };
}
