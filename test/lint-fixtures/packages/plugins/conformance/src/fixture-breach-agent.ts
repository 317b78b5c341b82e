// expect: no-restricted-imports nothing under packages/plugins imports the agent
// expect: @typescript-eslint/no-restricted-imports the conformance kit imports the SDK (its host loads plugins
import { loadPlugin } from '@cairn/agent';

export const used = loadPlugin;
