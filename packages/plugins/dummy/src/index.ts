/**
 * @cairn/plugin-dummy: a provider that simulates backups and restores, for tests and demos.
 *
 * Connection config (and, per instance, `locator.dummy` overriding it):
 * `{durationMs = 1000, sizeBytes = 64 MiB, steps = 5, failCode?, failMessage?, progressMessage?, failAt = "end"}`.
 */
import { definePlugin } from '@cairn/plugin-sdk';
import { manifest } from './manifest.js';
import { createDummyProvider } from './provider.js';

export { manifest } from './manifest.js';
export { dummyOptions, type DummyOptions } from './provider.js';

const plugin = definePlugin({ manifest, createProvider: createDummyProvider });
export default plugin;
