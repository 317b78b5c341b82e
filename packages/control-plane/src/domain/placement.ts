import { HELD_KINDS } from './maintenance.js';
import type { TaskKind } from './task.js';

/** What the dispatcher needs to know of an agent to place a task on it. */
export interface AgentCandidate {
  id: string;
  zone: string;
  slots: number;
  held: number;
  plugins: { name: string; capabilities: string[] }[];
  draining: boolean;
  /** Shutting down: it takes no new task of any kind. */
  shuttingDown: boolean;
}

export interface TaskNeeds {
  kind: string;
  plugin: string;
  zone: string;
  pinnedAgentId: string | null;
}

/** Why an agent cannot take a task, or null when it can. */
export function unfit(agent: AgentCandidate, task: TaskNeeds): string | null {
  if (task.pinnedAgentId !== null && task.pinnedAgentId !== agent.id) return 'pinned to another agent';
  if (agent.zone !== task.zone) return 'other zone';
  const plugin = agent.plugins.find((p) => p.name === task.plugin);
  if (!plugin) return `plugin ${task.plugin} not loaded`;
  if (!plugin.capabilities.includes(task.kind)) return `plugin ${task.plugin} cannot ${task.kind}`;
  if (agent.held >= agent.slots) return 'no free slot';
  if (agent.draining && HELD_KINDS.includes(task.kind as TaskKind)) return 'draining';
  if (agent.shuttingDown) return 'shutting down';
  return null;
}
