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
