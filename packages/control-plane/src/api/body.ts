import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors.js';

/**
 * Reads a request's whole body, up to `maxBytes`, before anything else of the request runs.
 *
 * A client may send its body as slowly as the request timeout allows. Whatever waits on that
 * body must hold nothing shared meanwhile: a mutating request's store transaction opens only
 * after this (on SQLite it is the only writer, and every read waits behind it; on MySQL it is one
 * of a small pool's connections). Later readers (validators, the Idempotency-Key hash) get the
 * buffered bytes at once. A body over `maxBytes` is refused with 413 as soon as it is known
 * (from Content-Length, or once that many bytes came), without reading the rest.
 */
export function wholeBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => new AppError(413, 'payload_too_large', `request body exceeds ${maxBytes} bytes`);
  return async (c, next) => {
    // Nothing to read: and `c.req.raw` would build a whole web Request for every read.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const stream = c.req.raw.body;
    if (!stream) return emptyJson(c) ? withBody(c, EMPTY_OBJECT, next) : next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined && Number(declared) > maxBytes)
      throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read().catch(() => cutOff(c));
      if (done) break;
      size += value.length;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
    await withBody(c, size === 0 && emptyJson(c) ? EMPTY_OBJECT : Buffer.concat(chunks, size), next);
  };
}

/**
 * An empty body sent as JSON means no fields: `{}`. So a route whose body is optional takes it
 * like no body at all, and one that requires fields names them (400 invalid_input) instead of
 * calling nothing malformed. A body that is there but does not parse stays `400 malformed_json`.
 */
const EMPTY_OBJECT = Buffer.from('{}');

function emptyJson(c: Context): boolean {
  return (
    c.req.method !== 'GET' &&
    c.req.method !== 'HEAD' &&
    /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(c.req.header('content-type') ?? '')
  );
}

const bodies = new WeakMap<Context, Buffer>();

/** The body {@link wholeBody} read for this request (undefined: it had none). */
export function bufferedBody(c: Context): Buffer | undefined {
  return bodies.get(c);
}

async function withBody(c: Context, body: Buffer, next: () => Promise<void>): Promise<void> {
  bodies.set(c, body);
  c.req.raw = new Request(c.req.raw, { body });
  await next();
}

/** The client went away (or the request timeout cut it off) before its body was complete. */
function cutOff(c: Context): never {
  throw new AppError(400, 'incomplete_body', `the request body of ${c.req.method} ${c.req.path} ended early`);
}
