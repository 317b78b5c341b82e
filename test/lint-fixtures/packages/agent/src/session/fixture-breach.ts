// expect: import-x/no-restricted-paths session/ speaks the wire: it never runs tasks
// expect: @typescript-eslint/no-restricted-imports session/ speaks the wire: it never touches the plugin contract
// expect: @typescript-eslint/no-restricted-imports session/ speaks the wire: it never touches the plugin contract
import { Executor } from '../executor/executor.js';
import { PluginError } from '@cairn/plugin-sdk';
import { PluginRegistry } from '@cairn/plugin-sdk/host';

export const used = [Executor, PluginError, PluginRegistry];
