// One session's backlog of reports read and not yet applied is bounded: past it the session stops
// reading its socket (TCP pushes back on the agent) until the store has caught up. A real
// WebSocket pair on loopback; the store is a hand-held promise, so "slow" is exact, not timed.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, toBytes } from '@cairn/proto';
import type { Report } from '../domain/report-outcome.js';
import { quietHost, sessionPair, until } from '../testing/session-pair.js';

const AGENT = 'agt_00000000000000000000000001';

describe('an agent session under a flood of reports', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('stops reading its socket while its backlog is full, and reads on, losing nothing, once the store catches up', async () => {
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
    const { client, send, session, serverSocket } = await sessionPair(AGENT, quietHost(), reports, closers);
    const acked = new Set<number>();
    client.on('message', (data) => {
      const frame = decodeFrame(toBytes(data as Buffer), 64 * 1024 * 1024);
      for (const seq of frame.ack?.spoolSeqs ?? []) acked.add(Number(seq));
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
    await until('the session to pause its socket', () => serverSocket()?.isPaused === true);
    // What it read is its backlog's bound, and the frames ws had buffered when it paused: far from all.
    expect(session()!.backlog).toBeGreaterThanOrEqual(4096);
    expect(session()!.backlog).toBeLessThan(4096 + 2048);

    gate();
    open = Promise.resolve();
    await until('every report acknowledged', () => acked.size === FRAMES * PER_FRAME);
    expect(submitted.length).toBe(FRAMES * PER_FRAME);
    expect(new Set(submitted.map((r) => r.seq)).size).toBe(FRAMES * PER_FRAME);
    expect(serverSocket()!.isPaused).toBe(false);
  });
});
