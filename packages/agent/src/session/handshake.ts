import { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION, type FrameKind, type wire } from '@cairn/proto';

/** WebSocket close codes the agent uses (RFC 6455 §7.4.1, plus one private code). */
export const CloseCodes = {
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  /** The agent closes its own session to send a fresh hello (its state changed; a control plane without AgentState). */
  REHELLO: 4001,
} as const;

export type SessionPhase = 'awaiting-welcome' | 'ready';

/** Frames only an agent may send. */
const AGENT_ONLY: ReadonlySet<FrameKind> = new Set([
  'hello',
  'accepted',
  'rejected',
  'progress',
  'event',
  'result',
  'agentState',
  'credentialStored',
]);

export type FrameVerdict = { ok: true } | { ok: false; closeCode: number; reason: string };

/**
 * Is this frame from the control plane allowed now? Welcome first and exactly once; never a
 * frame only agents send. Anything else closes the session with 1008 (see agent.proto).
 *
 * @example checkServerFrame('awaiting-welcome', 'assign') // → { ok: false, closeCode: 1008, ... }
 */
export function checkServerFrame(
  phase: SessionPhase,
  kind: FrameKind,
  welcome?: wire.IServerWelcome | null,
): FrameVerdict {
  if (phase === 'awaiting-welcome') {
    if (kind !== 'welcome')
      return {
        ok: false,
        closeCode: CloseCodes.POLICY_VIOLATION,
        reason: `expected welcome as the first frame, got ${kind}`,
      };
    const version = welcome?.protocolVersion ?? 0;
    if (version !== PROTOCOL_VERSION) {
      return {
        ok: false,
        closeCode: CloseCodes.POLICY_VIOLATION,
        reason: `control plane speaks protocol version ${version}, the agent speaks ${PROTOCOL_VERSION}`,
      };
    }
    return { ok: true };
  }
  if (kind === 'welcome') return { ok: false, closeCode: CloseCodes.POLICY_VIOLATION, reason: 'welcome sent twice' };
  if (AGENT_ONLY.has(kind))
    return {
      ok: false,
      closeCode: CloseCodes.POLICY_VIOLATION,
      reason: `the control plane may not send ${kind} frames`,
    };
  return { ok: true };
}

/** What the agent says about itself in its first frame. */
export interface HelloFacts {
  agentId: string;
  zone: string;
  slots: number;
  plugins: wire.IPluginInfo[];
  agentVersion: string;
  hostname: string;
  running: { taskId: string; attempt: number }[];
  draining: boolean;
  drainMessage: string;
  /** Stopping (SIGTERM): finishing what runs, taking nothing new. */
  shuttingDown: boolean;
}

export function buildHello(facts: HelloFacts): wire.IAgentHello {
  return {
    protocolVersion: PROTOCOL_VERSION,
    agentId: facts.agentId,
    zone: facts.zone,
    slots: facts.slots,
    plugins: facts.plugins,
    agentVersion: facts.agentVersion,
    hostname: facts.hostname,
    running: facts.running,
    draining: facts.draining,
    drainMessage: facts.draining ? facts.drainMessage : '',
    shuttingDown: facts.shuttingDown,
  };
}

/**
 * The largest frame the agent may send on a session: what the welcome says the control plane
 * accepts (it closes the session on anything larger), or the protocol default when it says
 * nothing. This bounds the agent's sending only: the agent's own `--max-frame-bytes` bounds what
 * it receives (it protects the agent, and is told to the server in the hello), so neither limit
 * is the smaller of the two; each side honours the limit the other announced.
 */
export function sendLimit(welcome: wire.IServerWelcome): number {
  const bytes = welcome.maxFrameBytes ?? 0;
  return bytes > 0 ? bytes : DEFAULT_MAX_FRAME_BYTES;
}

/** Heartbeat interval to use when the welcome gives none (or an absurd one). */
export function heartbeatInterval(welcome: wire.IServerWelcome): number {
  const ms = welcome.heartbeatIntervalMs ?? 0;
  if (ms <= 0) return 15_000;
  return Math.min(Math.max(ms, 50), 10 * 60_000);
}
