import { describe, expect, it } from 'vitest';
import { checkServerFrame, heartbeatInterval } from './handshake.js';
import { peerSilent } from './heartbeat.js';
import { backoffDelay, nextServer, parseRetryAfter, reconnectDelay } from './reconnect.js';
import { agentSocketUrl } from './url.js';

describe('session rules', () => {
  it.each([
    { phase: 'awaiting-welcome', kind: 'welcome', ok: true },
    { phase: 'awaiting-welcome', kind: 'assign', ok: false, closeCode: 1008 },
    { phase: 'awaiting-welcome', kind: 'heartbeat', ok: false, closeCode: 1008 },
    { phase: 'ready', kind: 'welcome', ok: false, closeCode: 1008 },
    { phase: 'ready', kind: 'assign', ok: true },
    { phase: 'ready', kind: 'cancel', ok: true },
    { phase: 'ready', kind: 'drain', ok: true },
    { phase: 'ready', kind: 'ack', ok: true },
    { phase: 'ready', kind: 'heartbeat', ok: true },
    { phase: 'ready', kind: 'hello', ok: false, closeCode: 1008 },
    { phase: 'ready', kind: 'result', ok: false, closeCode: 1008 },
    { phase: 'ready', kind: 'agentState', ok: false, closeCode: 1008 },
    { phase: 'ready', kind: 'credentialStored', ok: false, closeCode: 1008 },
  ] as const)('a $kind frame while $phase is ok=$ok', ({ phase, kind, ...expected }) => {
    expect(checkServerFrame(phase, kind, { protocolVersion: 1 })).toMatchObject(expected);
  });

  it('refuses a welcome for another protocol version', () => {
    expect(checkServerFrame('awaiting-welcome', 'welcome', { protocolVersion: 2 })).toMatchObject({
      ok: false,
      closeCode: 1008,
    });
  });

  it('uses a sane heartbeat interval when the welcome gives none', () => {
    expect(heartbeatInterval({ heartbeatIntervalMs: 0 })).toBe(15_000);
    expect(heartbeatInterval({ heartbeatIntervalMs: 2_000 })).toBe(2_000);
  });

  it('calls the control plane silent after three intervals without a frame', () => {
    expect(peerSilent(0, 3_000, 1_000)).toBe(false);
    expect(peerSilent(0, 3_001, 1_000)).toBe(true);
  });

  it('backs off exponentially from 200 ms to at most 5 s, with full jitter', () => {
    const half = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffDelay(n, undefined, half))).toEqual([
      100, 200, 400, 800, 1600, 2500, 2500, 2500,
    ]);
    expect(backoffDelay(4, undefined, () => 0)).toBe(0);
  });

  it('waits at least as long as a 429 asked before reconnecting, whatever the backoff says', () => {
    expect(parseRetryAfter('2', 0)).toBe(2000);
    expect(parseRetryAfter(' 0 ', 0)).toBe(0);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('999999', 0)).toBe(5 * 60_000); // capped
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
    expect(reconnectDelay(0, 2000, undefined, () => 0)).toBe(2000);
    expect(reconnectDelay(0, 2000, undefined, () => 0.99)).toBe(2000 + 495); // a little jitter on top
    expect(reconnectDelay(10, 1000, undefined, () => 0.9)).toBe(4500); // the backoff is longer
    expect(reconnectDelay(3, undefined, undefined, () => 0.5)).toBe(800);
  });

  it('derives the WebSocket URL from the control plane URL', () => {
    expect(agentSocketUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/v1/agent');
    expect(agentSocketUrl('https://cp.example/')).toBe('wss://cp.example/v1/agent');
    expect(agentSocketUrl('https://cp.example/cairn/')).toBe('wss://cp.example/cairn/v1/agent');
  });

  it.each([
    ['one URL stays after a failure', 0, 1, 'failed', 0],
    ['a failure moves to the next replica', 0, 3, 'failed', 1],
    ['past the last replica comes the first', 2, 3, 'failed', 0],
    ['a fresh hello stays on the same replica', 1, 3, 'rehello', 1],
    ['a 429 stays: that replica is up and asked for a pause', 1, 3, 'paced', 1],
  ] as const)('nextServer: %s', (_, current, count, end, want) => {
    expect(nextServer(current, count, end)).toBe(want);
  });
});
