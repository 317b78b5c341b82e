import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { encodeFrame, PROTOCOL_VERSION, type wire } from '@cairn/proto';
import { systemClock } from '../clock.js';
import { AgentSession, type AgentSessionOptions, type SessionHost } from '../dispatch/agent-session.js';
import { AgentBudget } from '../domain/rate-limit.js';
import { createLogger } from '../logger.js';

export const UNLIMITED = { perSecond: 1e9, burst: 1e9 };

/** A session host that allows everything and does nothing; `overrides` replace its parts. */
export function quietHost(overrides: Partial<SessionHost> = {}): SessionHost {
  const host: SessionHost = {
    heartbeatMs: 5000,
    idleHeartbeatMs: 5000,
    maxFrameBytes: 1024 * 1024,
    frameRate: UNLIMITED,
    byteRate: UNLIMITED,
    budgetOf: () => new AgentBudget({ frames: UNLIMITED, bytes: UNLIMITED, sessions: { intervalMs: 0, burst: 1 } }, 0),
    onHello: async () => undefined,
    onHeartbeat: async () => undefined,
    onAgentState: async () => undefined,
    onCredentialStored: async () => undefined,
    onShuttingDownRefusal: () => undefined,
    onClose: async () => undefined,
    onViolation: () => undefined,
    onRateLimited: () => undefined,
  };
  // Property by property, so a getter of `overrides` stays a getter.
  return Object.defineProperties(host, Object.getOwnPropertyDescriptors(overrides));
}

/**
 * One agent session over a real WebSocket pair on loopback: a server whose connection becomes
 * an {@link AgentSession} on `host`, and a client that has said its hello. `closers` gets what
 * to close after the test.
 */
export async function sessionPair(
  agentId: string,
  host: SessionHost,
  reports: AgentSessionOptions['reports'],
  closers: (() => Promise<void> | void)[],
): Promise<{
  client: WebSocket;
  send: (env: wire.IEnvelope) => void;
  session: () => AgentSession | undefined;
  serverSocket: () => WebSocket | undefined;
}> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await once(server, 'listening');
  let serverSocket: WebSocket | undefined;
  let session: AgentSession | undefined;
  server.on('connection', (socket) => {
    serverSocket = socket;
    session = new AgentSession({
      agentId,
      zone: 'zone-a',
      socket,
      host,
      reports,
      wireClock: systemClock,
      log: createLogger('silent'),
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
  closers.push(() => client.terminate());
  await once(client, 'open');
  const send = (env: wire.IEnvelope) => client.send(encodeFrame(env));
  send({
    hello: {
      protocolVersion: PROTOCOL_VERSION,
      agentId,
      zone: 'zone-a',
      slots: 1,
      plugins: [],
      agentVersion: 'test',
      hostname: 'test',
      running: [],
    },
  });
  return { client, send, session: () => session, serverSocket: () => serverSocket };
}

/** Polls `probe` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
