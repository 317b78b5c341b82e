import fc from 'fast-check';
import { encodeFrame, v1, type wire } from '@cairn/proto';

/*
 * Fuzzed agent-protocol frames for the fault suite (F9): valid envelopes of every kind, then
 * mutated as a broken or hostile peer would send them (bit flips, truncations, splices of two
 * frames, a length or varint field overwritten, random bytes, a field repeated until the frame
 * nears its size limit). Generated with fast-check, so a seed replays a run.
 */

const id = fc.string({ maxLength: 40 });
const text = fc.string({ maxLength: 200 });
/** A uint64 as the codec hands it out (numbers; larger values on the wire come from the mutations). */
const seq = fc.maxSafeNat();
const u32 = fc.nat();
const i64 = fc.integer({ min: -(2 ** 53 - 1), max: 2 ** 53 - 1 });
const plugin = fc.record({
  name: id,
  version: id,
  apiVersion: u32,
  capabilities: fc.array(id, { maxLength: 5 }),
});
const ref = fc.record({ spoolSeq: seq, taskId: id, attempt: u32, atMs: i64 });
const report = fc.oneof(
  ref.map((r) => ({ accepted: r })),
  fc.record({ r: ref, reasonCode: id, message: text }).map(({ r, ...x }) => ({ rejected: { ...r, ...x } })),
  fc
    .record({ r: ref, percent: fc.double(), bytesDone: seq, bytesTotal: seq, message: text })
    .map(({ r, ...x }) => ({ progress: { ...r, ...x } })),
  fc.record({ r: ref, type: id, message: text, dataJson: text }).map(({ r, ...x }) => ({ event: { ...r, ...x } })),
  fc
    .record({ r: ref, outputJson: text, externalId: id, sizeBytes: seq, mode: id })
    .map(({ r, outputJson, ...b }) => ({ result: { ...r, ok: { outputJson, backup: b } } })),
  fc
    .record({ r: ref, code: id, message: text, retryable: fc.boolean() })
    .map(({ r, ...error }) => ({ result: { ...r, error } })),
);

/** A valid envelope of any kind (agent's and server's). */
export const validEnvelope: fc.Arbitrary<wire.IEnvelope> = fc.oneof(
  fc
    .record({
      protocolVersion: fc.constantFrom(0, 1, 2),
      agentId: id,
      zone: id,
      slots: u32,
      plugins: fc.array(plugin, { maxLength: 4 }),
      agentVersion: id,
      hostname: id,
      running: fc.array(fc.record({ taskId: id, attempt: u32 }), { maxLength: 4 }),
      draining: fc.boolean(),
      drainMessage: text,
      maxFrameBytes: u32,
      shuttingDown: fc.boolean(),
    })
    .map((hello) => ({ hello })),
  fc
    .record({
      protocolVersion: fc.constantFrom(0, 1, 2),
      sessionId: id,
      heartbeatIntervalMs: u32,
      maxFrameBytes: u32,
      framesPerSecond: u32,
      acceptsReportBatch: fc.boolean(),
    })
    .map((welcome) => ({ welcome })),
  fc.record({ sentAtMs: i64, running: u32, intervalMs: u32 }).map((heartbeat) => ({ heartbeat })),
  fc
    .record({
      taskId: id,
      attempt: u32,
      operation: id,
      plugin: id,
      providerConfigJson: text,
      paramsJson: text,
      tenantId: id,
    })
    .map((assign) => ({ assign })),
  fc.record({ taskId: id, attempt: u32 }).map((cancel) => ({ cancel })),
  fc.record({ enabled: fc.boolean(), message: text }).map((drain) => ({ drain })),
  fc.array(seq, { maxLength: 20 }).map((spoolSeqs) => ({ ack: { spoolSeqs } })),
  fc.record({ credential: id }).map((credential) => ({ credential })),
  fc
    .record({ draining: fc.boolean(), drainMessage: text, shuttingDown: fc.boolean() })
    .map((agentState) => ({ agentState })),
  fc.record({ credential: id }).map((credentialStored) => ({ credentialStored })),
  fc.array(report, { maxLength: 8 }).map((reports) => ({ reportBatch: { reports } })),
  report,
);

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** One length-delimited field (`field`, wire type 2) around `body`. */
function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint((field << 3) | 2), ...varint(body.length), ...body]);
}

/**
 * An envelope field `field` whose message repeats `repeated` (a whole encoded sub-field) `count`
 * times: a hello listing thousands of plugins, a batch of thousands of reports, an ack of
 * thousands of sequence numbers.
 */
function repeatedField(field: number, repeated: Uint8Array, count: number): Uint8Array {
  const body = new Uint8Array(repeated.length * count);
  for (let i = 0; i < count; i++) body.set(repeated, i * repeated.length);
  const head = Uint8Array.from([...varint((field << 3) | 2), ...varint(body.length)]);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

const bytesOf = validEnvelope.map((e) => encodeFrame(e));

/** The kinds of mutation, as the figures name them. */
export type Mutation = 'valid' | 'bitflip' | 'truncate' | 'splice' | 'length' | 'random' | 'repeated';

/**
 * A mutated frame and what was done to it. `maxBytes` bounds the repeated-field frames (some go
 * just over it, to meet the size limit too).
 */
export function mutatedFrame(maxBytes: number): fc.Arbitrary<{ mutation: Mutation; bytes: Uint8Array }> {
  const tag =
    <M extends Mutation>(mutation: M) =>
    (bytes: Uint8Array) => ({ mutation, bytes });
  return fc.oneof(
    { weight: 2, arbitrary: bytesOf.map(tag('valid')) },
    {
      weight: 6,
      arbitrary: fc
        .tuple(bytesOf, fc.array(fc.nat(), { minLength: 1, maxLength: 8 }))
        .filter(([b]) => b.length > 0)
        .map(([b, flips]) => {
          const out = Uint8Array.from(b);
          for (const f of flips) out[(f >> 3) % out.length]! ^= 1 << (f & 7);
          return { mutation: 'bitflip' as const, bytes: out };
        }),
    },
    {
      weight: 4,
      arbitrary: fc
        .tuple(bytesOf, fc.nat())
        .map(([b, n]) => ({ mutation: 'truncate' as const, bytes: b.slice(0, n % (b.length + 1)) })),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(bytesOf, bytesOf, fc.nat(), fc.nat()).map(([a, b, i, j]) => {
        const head = a.slice(0, i % (a.length + 1));
        const tail = b.slice(j % (b.length + 1));
        const out = new Uint8Array(head.length + tail.length);
        out.set(head);
        out.set(tail, head.length);
        return { mutation: 'splice' as const, bytes: out };
      }),
    },
    {
      weight: 4,
      // A length or varint overwritten: at a random place, a value from 0 to 2^35 (short, long, absurd).
      arbitrary: fc
        .tuple(bytesOf, fc.nat(), fc.oneof(fc.nat({ max: 300 }), fc.constantFrom(2 ** 31, 2 ** 32 - 1, 2 ** 35)))
        .filter(([b]) => b.length > 0)
        .map(([b, at, value]) => {
          const i = at % b.length;
          const v = varint(value);
          const out = new Uint8Array(b.length + v.length - 1);
          out.set(b.subarray(0, i));
          out.set(v, i);
          out.set(b.subarray(i + 1), i + v.length);
          return { mutation: 'length' as const, bytes: out };
        }),
    },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 512 }).map(tag('random')) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            // hello.plugins (5): one PluginInfo
            { field: 1, sub: lengthDelimited(5, encodePlugin()) },
            // reportBatch.reports (16/1): one Envelope carrying progress
            {
              field: 16,
              sub: lengthDelimited(1, encodeFrame({ progress: { spoolSeq: 1, taskId: 't', attempt: 1, atMs: 1 } })),
            },
            // ack.spoolSeqs (12/1): one varint
            { field: 12, sub: Uint8Array.from([0x08, 0x01]) },
            // hello.running (8): one TaskRef
            { field: 1, sub: lengthDelimited(8, Uint8Array.from([0x0a, 0x01, 0x74, 0x10, 0x01])) },
          ),
          fc.double({ min: 0.1, max: 1.05, noNaN: true }),
        )
        .map(([{ field, sub }, fill]) => ({
          mutation: 'repeated' as const,
          bytes: repeatedField(field, sub, Math.max(1, Math.floor((maxBytes * fill) / sub.length))),
        })),
    },
  );
}

function encodePlugin(): Uint8Array {
  return v1.PluginInfo.encode({ name: 'p', version: '1', apiVersion: 1, capabilities: ['backup'] }).finish();
}

/*
 * Frames an agent may send and the control plane must take without closing the session, hostile
 * in their values: heartbeats with any clock and count, and reports (alone or in batches) of any
 * kind on task ids that exist nowhere or belong to another agent, with any attempt, sequence,
 * percent, byte counts, text and JSON the wire allows. The volume half of F9 floods sessions with
 * them, a mutated frame now and then ending one.
 */
const plausibleRef = fc.record({
  spoolSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  taskId: fc.string({ minLength: 1, maxLength: 64 }),
  attempt: fc.integer({ min: 1, max: 100 }),
  atMs: fc.constant(0),
});
const count = fc.maxSafeNat();
const json = fc.oneof(
  fc.constant(''),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
);
const plausibleReport = fc.oneof(
  plausibleRef.map((r) => ({ accepted: r })),
  fc.record({ r: plausibleRef, reasonCode: id, message: text }).map(({ r, ...x }) => ({ rejected: { ...r, ...x } })),
  fc
    .record({
      r: plausibleRef,
      percent: fc.double({ min: 0, max: 100, noNaN: true }),
      bytesDone: count,
      bytesTotal: count,
      message: text,
    })
    .map(({ r, ...x }) => ({ progress: { ...r, ...x } })),
  fc
    .record({ r: plausibleRef, type: fc.string({ maxLength: 100 }), message: text, dataJson: json })
    .map(({ r, ...x }) => ({ event: { ...r, ...x } })),
  fc
    .record({
      r: plausibleRef,
      outputJson: json,
      externalId: fc.string({ maxLength: 255 }),
      sizeBytes: count,
      mode: id,
    })
    .map(({ r, outputJson, ...b }) => ({ result: { ...r, ok: { outputJson, backup: b } } })),
  fc
    .record({ r: plausibleRef, code: id, message: text, retryable: fc.boolean() })
    .map(({ r, ...error }) => ({ result: { ...r, error } })),
);
export const plausibleAgentFrame: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    fc.record({ sentAtMs: i64, running: u32, intervalMs: fc.constant(0) }).map((heartbeat) => ({ heartbeat })),
    plausibleReport,
    fc.array(plausibleReport, { minLength: 1, maxLength: 8 }).map((reports) => ({ reportBatch: { reports } })),
  )
  .map((e) => encodeFrame(e as wire.IEnvelope));
