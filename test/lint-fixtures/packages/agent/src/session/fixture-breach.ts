// expect: import-x/no-restricted-paths session/ speaks the wire: it never reaches the plugins
// expect: import-x/no-restricted-paths session/ speaks the wire: it never reaches the plugins
// expect: @typescript-eslint/no-restricted-imports session/ speaks the wire: it never touches the plugin contract
import { PluginRegistry } from '../plugin-host/registry.js';
import { Executor } from '../executor/executor.js';
import { PluginError } from '@cairn/plugin-sdk';

export const used = [PluginRegistry, Executor, PluginError];
