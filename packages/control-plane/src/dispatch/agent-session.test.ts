// One session's backlog of reports read and not yet applied is bounded: past it the session stops
// reading its socket (TCP pushes back on the agent) until the store has caught up. A real
// WebSocket pair on loopback; the store is a hand-held promise, so "slow" is exact, not timed.
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes, type wire } from '@cairn/proto';
import { systemClock } from '../clock.js';
import { AgentBudget } from '../domain/rate-limit.js';
import type { Report } from '../domain/report-outcome.js';
import { createLogger } from '../logger.js';
import { AgentSession, type SessionHost } from './agent-session.js';

const AGENT = 'agt_00000000000000000000000001';
const unlimited = { perSecond: 1e9, burst: 1e9 };

async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('an agent session under a flood of reports', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('stops reading its socket while its backlog is full, and reads on, losing nothing, once the store catches up', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await once(server, 'listening');
    // The store: each submit waits until the test lets it go.
    const submitted: Report[] = [];
    let gate: () => void = () => undefined;
    let open = new Promise<void>((resolve) => (gate = resolve));
    const reports = {
      submit: async (_agentId: string, batch: Report[]) => {
        await open;
        submitted.push(...batch);
      },
    };
    const host: SessionHost = {
      heartbeatMs: 5000,
      maxFrameBytes: 1024 * 1024,
      frameRate: unlimited,
      byteRate: unlimited,
      budgetOf: () =>
        new AgentBudget({ frames: unlimited, bytes: unlimited, sessions: { intervalMs: 0, burst: 1 } }, 0),
      onHello: async () => undefined,
      onHeartbeat: async () => undefined,
      onAgentState: async () => undefined,
      onCredentialStored: async () => undefined,
      onShuttingDownRefusal: () => undefined,
      onClose: async () => undefined,
      onViolation: () => undefined,
      onRateLimited: () => undefined,
    };
    let serverSocket: WebSocket | undefined;
    let session: AgentSession | undefined;
    server.on('connection', (socket) => {
      serverSocket = socket;
      session = new AgentSession({
        agentId: AGENT,
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
    const acked = new Set<number>();
    client.on('message', (data) => {
      const frame = decodeFrame(toBytes(data as Buffer), 64 * 1024 * 1024);
      for (const seq of frame.ack?.spoolSeqs ?? []) acked.add(Number(seq));
    });
    await once(client, 'open');
    const send = (env: wire.IEnvelope) => client.send(encodeFrame(env));
    send({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        agentId: AGENT,
        zone: 'zone-a',
        slots: 1,
        plugins: [],
        agentVersion: 'test',
        hostname: 'test',
        running: [],
      },
    });

    // 200 frames of 64 progress reports on tasks of nobody's: 12,800 reports, sent without waiting for acks.
    const FRAMES = 200;
    const PER_FRAME = 64;
    let seq = 0;
    for (let f = 0; f < FRAMES; f++)
      send({
        reportBatch: {
          reports: Array.from({ length: PER_FRAME }, () => ({
            progress: { spoolSeq: ++seq, taskId: `tsk_flood_${seq}`, attempt: 1, atMs: 0, percent: 50 },
          })),
        },
      });
    await until('the session to pause its socket', () => serverSocket?.isPaused === true);
    // What it read is its backlog's bound, and the frames ws had buffered when it paused: far from all.
    expect(session!.backlog).toBeGreaterThanOrEqual(4096);
    expect(session!.backlog).toBeLessThan(4096 + 2048);

    gate();
    open = Promise.resolve();
    await until('every report acknowledged', () => acked.size === FRAMES * PER_FRAME);
    expect(submitted.length).toBe(FRAMES * PER_FRAME);
    expect(new Set(submitted.map((r) => r.seq)).size).toBe(FRAMES * PER_FRAME);
    expect(serverSocket!.isPaused).toBe(false);
  });
});
