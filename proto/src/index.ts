/**
 * Cairn agent protocol v1: generated message classes plus the one frame codec both sides use.
 *
 * @example
 * const bytes = encodeFrame({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
 * const env = decodeFrame(bytes); // throws FrameError on garbage or oversize frames
 */
import './numbers.js';
import { cairn } from '../gen/agent.js';

/** The generated message classes (values). */
export const v1 = cairn.agent.v1;
/** The generated message types, e.g. `wire.ITaskAssign`. */
export import wire = cairn.agent.v1;

/** Version carried in AgentHello / ServerWelcome. */
export const PROTOCOL_VERSION = 1;
/** Default upper bound of one frame; both sides refuse anything larger. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** The most reports one ReportBatch frame may carry (agent.proto); a server closes a session that sends more. */
export const MAX_REPORTS_PER_BATCH = 64;

/** The names of the oneof `body` of an envelope. */
export type FrameKind = NonNullable<wire.Envelope['body']>;

type Scalar = string | number | boolean | Uint8Array;
type DecodedElement<E> = E extends Scalar ? E : Decoded<E>;
type DecodedValue<V> = V extends (infer E)[] ? DecodedElement<E>[] : V extends Scalar ? V : Decoded<V> | null;
/**
 * A message as decoding hands it out: proto3 scalars and repeated fields always hold a value
 * (their default when absent on the wire); nested messages may be null.
 */
export type Decoded<T> = { [K in keyof T as K extends '$unknowns' ? never : K]-?: DecodedValue<NonNullable<T[K]>> };
/** A decoded envelope: exactly one body field is set, and `body` names it. */
export type DecodedFrame = Decoded<wire.Envelope.$Properties> & { body: FrameKind };

/** Raised for a frame that is too large, does not decode, or has no body. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: 'FRAME_TOO_LARGE' | 'FRAME_MALFORMED' | 'FRAME_EMPTY',
    message: string,
  ) {
    super(message);
  }
}

export function encodeFrame(body: wire.IEnvelope): Uint8Array {
  return v1.Envelope.encode(v1.Envelope.create(body)).finish();
}

/** Protobuf's wire type of a length-delimited field (a message). */
const LENGTH_DELIMITED = 2;
/** Envelope's `report_batch` (field 16) and ReportBatch's `reports` (field 1) tags (agent.proto). */
const REPORT_BATCH_TAG = (16 << 3) | LENGTH_DELIMITED;
const REPORTS_TAG = (1 << 3) | LENGTH_DELIMITED;
/** Envelope's report fields, accepted (5) to result (9), are BatchedReport's 1 to 5, in the same order. */
const FIRST_REPORT_FIELD = 5;
const LAST_REPORT_FIELD = 9;
const BATCHED_FIELD_OFFSET = FIRST_REPORT_FIELD - 1;

const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * The size of the ReportBatch frame that carries reports whose own frames ({@link encodeFrame} of
 * one report) have these sizes: exactly what {@link encodeReportBatchFrame} makes of them.
 */
export function reportBatchFrameBytes(reportFrameBytes: readonly number[]): number {
  const inner = reportBatchBytes(reportFrameBytes);
  return varintBytes(REPORT_BATCH_TAG) + varintBytes(inner) + inner;
}

/** The size of the ReportBatch message itself: each report's tag, length and message. */
function reportBatchBytes(reportFrameBytes: readonly number[]): number {
  let inner = 0;
  for (const n of reportFrameBytes) inner += 1 + varintBytes(n) + n;
  return inner;
}

/**
 * One ReportBatch frame carrying reports already encoded each as its own frame, without encoding
 * them again: byte for byte what `encodeFrame({ reportBatch: { reports } })` gives for the same
 * reports. A report's own frame is its envelope field's tag, its length and its message; in a
 * batch the message is the same and only the field number differs. Throws on a frame that is
 * not one report (accepted, rejected, progress, event or result).
 *
 * @example
 * const frames = records.map((r) => encodeFrame({ progress: r }));
 * ws.send(frames.length === 1 ? frames[0] : encodeReportBatchFrame(frames));
 */
export function encodeReportBatchFrame(reportFrames: readonly Uint8Array[]): Uint8Array {
  const inner = reportBatchBytes(reportFrames.map((f) => f.byteLength));
  const out = new Uint8Array(varintBytes(REPORT_BATCH_TAG) + varintBytes(inner) + inner);
  let at = 0;
  const varint = (n: number) => {
    for (; n >= 0x80; n >>>= 7) out[at++] = (n & 0x7f) | 0x80;
    out[at++] = n;
  };
  varint(REPORT_BATCH_TAG);
  varint(inner);
  for (const frame of reportFrames) {
    const field = (frame[0] ?? 0) >> 3;
    if ((frame[0]! & 7) !== LENGTH_DELIMITED || field < FIRST_REPORT_FIELD || field > LAST_REPORT_FIELD)
      throw new Error(`not a frame of one report (its first tag is ${frame[0]}): it cannot go in a ReportBatch`);
    out[at++] = REPORTS_TAG;
    varint(frame.byteLength);
    out[at++] = ((field - BATCHED_FIELD_OFFSET) << 3) | LENGTH_DELIMITED;
    out.set(frame.subarray(1), at);
    at += frame.byteLength - 1;
  }
  return out;
}

/** Decodes one frame; the result always has exactly one body field set (`env.body` names it). */
export function decodeFrame(data: Uint8Array, maxBytes: number = DEFAULT_MAX_FRAME_BYTES): DecodedFrame {
  if (data.byteLength > maxBytes) {
    throw new FrameError('FRAME_TOO_LARGE', `frame of ${data.byteLength} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  let env: wire.Envelope;
  try {
    env = v1.Envelope.decode(data);
  } catch (err) {
    throw new FrameError(
      'FRAME_MALFORMED',
      `frame does not decode as cairn.agent.v1.Envelope: ${(err as Error).message}`,
    );
  }
  if (!env.body) throw new FrameError('FRAME_EMPTY', 'frame carries no message body');
  return env as unknown as DecodedFrame;
}

/** Converts what `ws` hands to a message listener into bytes. */
export function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
