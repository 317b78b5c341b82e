// expect: @typescript-eslint/no-restricted-imports the control plane never imports the agent, the SDK or a plugin
// expect: @typescript-eslint/no-restricted-imports the control plane never imports the agent, the SDK or a plugin
import { PluginError } from '@cairn/plugin-sdk';
import { Agent } from '@cairn/agent';

export const used = [PluginError, Agent];
