/**
 * @cairn/plugin-restic: file backups of paths on the agent's host into a restic repository.
 *
 * Connection: `endpoint` = the repository (an absolute path, or a `rest:`/`sftp:` URL),
 * `credentials.password` = its password (handed to restic only as RESTIC_PASSWORD), `config` =
 * `{binary?, cancelGraceMs?, lockWaitMs?, minFreeBytes?}`. Instance locator: `{paths: [...]}`,
 * each below the agent's roots (`host-paths`: confined, and restored through a staging directory).
 */
import { definePlugin } from '@cairn/plugin-sdk';
import { manifest } from './manifest.js';
import { createResticProvider } from './provider.js';

export { manifest } from './manifest.js';
export { INSTANCE_TAG, OFFERINGS, pathsOf, settingsOf } from './provider.js';

const plugin = definePlugin({ manifest, createProvider: createResticProvider });
export default plugin;
