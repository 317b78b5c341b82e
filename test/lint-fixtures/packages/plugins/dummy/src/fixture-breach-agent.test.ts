// expect: no-restricted-imports nothing under packages/plugins imports the agent
// A test file, and a type only: held to it all the same.
import type { Agent } from '@cairn/agent';

export type Used = Agent;
