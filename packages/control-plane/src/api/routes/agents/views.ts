import type { MaintenanceSource } from '../../../domain/maintenance.js';
import type { AgentState } from '../../../service/agents.js';
import type { AgentView, ZoneView } from '../../../store/agent-repository.js';
import { iso, isoOrNull } from '../../views.js';

export const agentView = (
  a: AgentView,
  maintenance: { enabled: boolean; message: string; source: MaintenanceSource },
) => ({
  id: a.id,
  name: a.name,
  zone: a.zone,
  hostname: a.hostname,
  state: a.state,
  slots: a.slots,
  plugins: a.plugins,
  runningTasks: a.runningTasks,
  maintenance,
  agentVersion: a.agentVersion,
  lastSeenAt: isoOrNull(a.lastSeenAt),
  createdAt: iso(a.createdAt),
  credential: {
    rotation: a.rotationPending ? ('pending' as const) : ('none' as const),
    requestedAt: isoOrNull(a.rotationRequestedAt),
    rotatedAt: isoOrNull(a.credentialRotatedAt),
  },
});

/** An agent with its own maintenance, as the API shows it. */
export const agentStateView = (s: AgentState) => agentView(s.agent, s.maintenance);

/** A zone with its agents' states; the agents themselves only when `agents` (the sp-admin's view) is given. */
export const zoneView = (z: ZoneView, agents?: ReturnType<typeof agentView>[]) => ({
  zone: z.zone,
  agentStates: {
    connected: z.agents.filter((a) => a.state === 'connected').length,
    disconnected: z.agents.filter((a) => a.state === 'disconnected').length,
    draining: z.agents.filter((a) => a.state === 'draining').length,
  },
  ...(agents ? { agents } : {}),
});
