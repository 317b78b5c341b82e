import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { bearerChallenge } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { AgentRepository } from '../store/agent-repository.js';
import { AgentSession } from './agent-session.js';
import type { Dispatcher } from './dispatcher.js';

export const AGENT_PATH = '/v1/agent';

function refuse(socket: Duplex, status: number, message: string, challenge?: string): void {
  const body = JSON.stringify({
    type: 'about:blank',
    title: message,
    status,
    detail: message,
    code: status === 401 ? 'unauthorized' : 'not_found',
  });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Not Found'}\r\n${challenge ? `WWW-Authenticate: ${challenge}\r\n` : ''}Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The agent WebSocket endpoint, on the HTTP server's port. The upgrade is authenticated with
 * the agent's own credential (`Authorization: Bearer ...`) before any frame is read.
 */
export function attachAgentGateway(
  server: Server,
  agents: AgentRepository,
  dispatcher: Dispatcher,
  log: Logger,
): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: dispatcher.maxFrameBytes });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== AGENT_PATH) return refuse(socket, 404, `no WebSocket endpoint at ${url.pathname}`);
    const auth = req.headers.authorization ?? '';
    const credential = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    void (async () => {
      // Looked up afresh on every upgrade (no cache): a revoked agent is refused at once, on
      // every replica.
      const found = credential ? await agents.findByCredential(credential) : undefined;
      if (!found) {
        log.warn({ remote: req.socket.remoteAddress }, 'agent connection refused: bad, revoked or missing credential');
        return refuse(socket, 401, 'agent credential is missing or not valid', bearerChallenge(credential !== ''));
      }
      const agent = found.agent;
      if (found.pending) {
        // The agent has stored its rotated credential (it only ever sends it after that): the
        // previous one is retired now.
        await agents.promoteCredential(agent.id, credential);
        log.info({ agentId: agent.id }, 'agent authenticated with its rotated credential; the previous one is retired');
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const session = new AgentSession(agent.id, agent.zone, ws, dispatcher, log.child({ agentId: agent.id }));
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
