/**
 * cairn-plugin-example: the template of a Cairn provider plugin. It protects a directory
 * (instance locator `{paths: ["/abs/dir"]}`) by copying it into a store directory (connection config
 * `{storeDir: "/abs/store"}`), one sub-directory per restore point.
 *
 * The agent imports this module and uses its default export (or a named export `plugin`).
 */
import { definePlugin } from '@cairn/plugin-sdk';
import { manifest } from './manifest.js';
import { createProvider } from './provider.js';

export { manifest } from './manifest.js';

const plugin = definePlugin({ manifest, createProvider });
export default plugin;
