import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { bearerChallenge } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { AgentRepository } from '../store/agent-repository.js';
import { hashSecret } from '../store/ids.js';
import { AgentSession } from './agent-session.js';
import type { Dispatcher } from './dispatcher.js';
import type { ReportCommitter } from '../lifecycle/report-committer.js';
import { elapsedMs, type Clock } from '../clock.js';

export const AGENT_PATH = '/v1/agent';

const REFUSALS = {
  401: { reason: 'Unauthorized', code: 'unauthorized' },
  404: { reason: 'Not Found', code: 'not_found' },
  429: { reason: 'Too Many Requests', code: 'agent_reconnect_too_soon' },
} as const;

/** Answers an upgrade it will not take; `headers` adds a challenge (401) or Retry-After (429). */
function refuse(
  socket: Duplex,
  status: keyof typeof REFUSALS,
  message: string,
  headers: Record<string, string> = {},
): void {
  const { reason, code } = REFUSALS[status];
  const body = JSON.stringify({ type: 'about:blank', title: message, status, detail: message, code });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** What the agent endpoint hands each session it opens to. */
export interface GatewayDeps {
  agents: AgentRepository;
  dispatcher: Dispatcher;
  reports: Pick<ReportCommitter, 'submit'>;
  /** The clock agents' own times are judged by (AgentSessionOptions.wireClock); pacing counts real elapsed time. */
  wireClock: Clock;
  log: Logger;
}

/**
 * The agent WebSocket endpoint, on the HTTP server's port. The upgrade is authenticated with
 * the agent's own credential (`Authorization: Bearer ...`) before any frame is read.
 */
export function attachAgentGateway(
  server: Server,
  { agents, dispatcher, reports, wireClock, log }: GatewayDeps,
): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: dispatcher.maxFrameBytes });
  /** Agents (by credential hash) refused for reconnecting too often, and until when. */
  const paced = new Map<string, { agentId: string; until: number }>();
  const tooSoon = (socket: Duplex, agentId: string, until: number) => {
    const retryAfterS = Math.max(1, Math.ceil((until - elapsedMs()) / 1000));
    dispatcher.onReconnectRefused();
    refuse(socket, 429, `agent ${agentId} opens sessions too often; retry after ${retryAfterS} s`, {
      'Retry-After': String(retryAfterS),
    });
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== AGENT_PATH) return refuse(socket, 404, `no WebSocket endpoint at ${url.pathname}`);
    const auth = req.headers.authorization ?? '';
    const credential = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    const hash = hashSecret(credential);
    // An agent refused for reconnecting too often is refused again, until then, without a store
    // lookup: a reconnect loop costs one hash per attempt.
    const refused = paced.get(hash);
    if (refused && refused.until > elapsedMs()) return tooSoon(socket, refused.agentId, refused.until);
    void (async () => {
      // Looked up afresh on every upgrade (no cache): a revoked agent is refused at once, on
      // every replica.
      const found = credential ? await agents.findByCredential(credential) : undefined;
      if (!found) {
        log.warn({ remote: req.socket.remoteAddress }, 'agent connection refused: bad, revoked or missing credential');
        return refuse(socket, 401, 'agent credential is missing or not valid', {
          'WWW-Authenticate': bearerChallenge(credential !== ''),
        });
      }
      const agent = found.agent;
      // Paced per agent: a session closed over budget, or a loop of reconnects, buys nothing.
      const admitted = dispatcher.admitSession(agent.id);
      if (!admitted.ok) {
        const until = elapsedMs() + admitted.retryAfterMs;
        if (!paced.has(hash)) log.warn({ agentId: agent.id }, 'agent connection refused: it opens sessions too often');
        paced.set(hash, { agentId: agent.id, until });
        return tooSoon(socket, agent.id, until);
      }
      paced.delete(hash);
      if (found.pending) {
        // The agent has stored its rotated credential (it only ever sends it after that): the
        // previous one is retired now.
        await agents.promoteCredential(agent.id, credential);
        log.info({ agentId: agent.id }, 'agent authenticated with its rotated credential; the previous one is retired');
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const session = new AgentSession({
          agentId: agent.id,
          zone: agent.zone,
          socket: ws,
          host: dispatcher,
          reports,
          wireClock,
          log: log.child({ agentId: agent.id }),
        });
        log.debug({ agentId: agent.id, sessionId: session.sessionId }, 'agent socket open');
      });
    })().catch((err: unknown) => {
      log.error({ err }, 'agent upgrade failed');
      socket.destroy();
    });
  });
  wss.on('error', (err) => log.error({ err }, 'agent gateway error'));
  return wss;
}
