/**
 * F9, in process: the frame codec both sides use (`decodeFrame`) and the agent's check of each
 * frame from the control plane (`checkServerFrame`) fed mutated frames (bit flips, truncations,
 * splices, overwritten lengths, random bytes, fields repeated up to the size limit). Each either
 * decodes to an envelope with exactly one body or is refused with the codec's own `FrameError`;
 * nothing else is ever thrown, and the heap is as large after as before. 1,000,000 frames with
 * `CAIRN_TEST_FAULTS=long`; `CAIRN_TEST_FAULTS_SEED=<n>` replays a run.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkServerFrame } from '@cairn/agent';
import { decodeFrame, DEFAULT_MAX_FRAME_BYTES, FrameError, type FrameKind } from '@cairn/proto';
import { mutatedFrame, type Mutation } from '@cairn/test-harness/frame-fuzz';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const FRAMES = LONG ? 1_000_000 : 40_000;
/** What the heap may keep after all of it (the decoder keeps nothing; this is measurement slack). */
const HEAP_SLACK = 16 * 1024 * 1024;

/** The envelope's body fields (agent.proto). */
const KINDS = new Set<string>([
  'hello',
  'welcome',
  'heartbeat',
  'assign',
  'accepted',
  'rejected',
  'progress',
  'event',
  'result',
  'cancel',
  'drain',
  'ack',
  'credential',
  'agentState',
  'credentialStored',
  'reportBatch',
]);

/** A full garbage collection (the flag is set for this process only, as vitest runs without --expose-gc). */
function collect(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('F9: fuzzed frames at the codec and the agent decoder', () => {
  it(`${FRAMES} mutated frames: each decodes to one body or is a FrameError; nothing else thrown, heap flat`, () => {
    const gc = collect();
    const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
    const byMutation: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    const count = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;

    fc.assert(
      fc.property(
        mutatedFrame(DEFAULT_MAX_FRAME_BYTES),
        ({ mutation, bytes }: { mutation: Mutation; bytes: Uint8Array }) => {
          count(byMutation, mutation);
          let frame;
          try {
            frame = decodeFrame(bytes);
          } catch (err) {
            // The codec's clear error, and nothing else: a TypeError or RangeError here is a defect.
            if (!(err instanceof FrameError)) throw err;
            expect(['FRAME_TOO_LARGE', 'FRAME_MALFORMED', 'FRAME_EMPTY']).toContain(err.code);
            expect(err.message).toMatch(/\S/);
            count(outcomes, err.code);
            return;
          }
          expect(KINDS.has(frame.body)).toBe(true);
          const set = [...KINDS].filter((k) => (frame as unknown as Record<string, unknown>)[k] != null);
          expect(set).toEqual([frame.body]);
          // The agent's check of what the control plane sent, in both phases of a session.
          for (const phase of ['awaiting-welcome', 'ready'] as const) {
            const verdict = checkServerFrame(phase, frame.body as FrameKind, frame.welcome);
            if (!verdict.ok) {
              expect(verdict.closeCode).toBe(1008);
              expect(verdict.reason).toMatch(/\S/);
            }
            count(outcomes, `${phase}:${verdict.ok ? 'ok' : 'closed'}`);
          }
          count(outcomes, 'decoded');
        },
      ),
      { numRuns: FRAMES, seed, endOnFailure: false },
    );

    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.info(
      `F9 codec: seed ${seed}, ${FRAMES} frames (${Object.entries(byMutation)
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )}); decoded ${outcomes['decoded'] ?? 0} (agent: ${outcomes['ready:closed'] ?? 0} closed in session, ${
        outcomes['awaiting-welcome:ok'] ?? 0
      } accepted as a first frame), FRAME_MALFORMED ${outcomes['FRAME_MALFORMED'] ?? 0}, FRAME_EMPTY ${
        outcomes['FRAME_EMPTY'] ?? 0
      }, FRAME_TOO_LARGE ${outcomes['FRAME_TOO_LARGE'] ?? 0}; heap ${mb(heapBefore)} → ${mb(heapAfter)} MiB`,
    );
    expect(Object.values(byMutation).reduce((a, b) => a + b, 0)).toBe(FRAMES);
    // Every kind of outcome was met: the fuzz reaches both the decoder's refusals and the checks.
    expect(outcomes['FRAME_MALFORMED']).toBeGreaterThan(0);
    expect(outcomes['FRAME_TOO_LARGE']).toBeGreaterThan(0);
    expect(outcomes['ready:closed']).toBeGreaterThan(0);
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_SLACK);
  }, 3_600_000);
});
