import type { HttpBindings } from '@hono/node-server';
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
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const source = bodySource(c);
    if (!source) return emptyJson(c) ? withBody(c, EMPTY_OBJECT, next) : next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined && Number(declared) > maxBytes)
      throw tooLarge();
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      // Leaving the loop early (too large) ends the rest of the body unread.
      for await (const chunk of source) {
        size += chunk.length;
        if (size > maxBytes) break;
        chunks.push(chunk);
      }
    } catch {
      cutOff(c);
    }
    if (size > maxBytes) throw tooLarge();
    if (size === 0) noWebBody(c);
    await withBody(c, size === 0 && emptyJson(c) ? EMPTY_OBJECT : Buffer.concat(chunks, size), next);
  };
}

/**
 * A body read from Node's request that was empty is no body: said on `c.req.raw` itself. Asked
 * for its body, `@hono/node-server`'s request would otherwise build a whole web Request around
 * the drained stream, and the OpenAPI validators ask for a request without Content-Type (their
 * media-type check clones it and reads it to its end, to find nothing). A body that is not empty
 * has a Content-Type by then, or was refused (see the JSON check in app.ts).
 */
function noWebBody(c: Context): void {
  const raw = c.req.raw;
  if (!Object.hasOwn(raw, 'body') && (c.env as Partial<HttpBindings> | undefined)?.incoming)
    Object.defineProperty(raw, 'body', { value: null });
}

/** Node requests whose body {@link wholeBody} has read: a request run again carries its own. */
const readFromNode = new WeakSet<object>();

/**
 * Where a request's body comes from. On Node, the server's own request: asking for
 * `c.req.raw.body` would build a whole web Request (a web stream, an abort signal) for every
 * mutating request, several times what reading the few bytes costs.
 */
function bodySource(c: Context): AsyncIterable<Uint8Array> | null {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (incoming && !readFromNode.has(incoming)) {
    readFromNode.add(incoming);
    return incoming;
  }
  return c.req.raw.body as AsyncIterable<Uint8Array> | null;
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

const utf8 = new TextDecoder();

async function withBody(c: Context, body: Buffer, next: () => Promise<void>): Promise<void> {
  bodies.set(c, body);
  // Every later reader (`c.req.json()` in the validators, `c.req.text()`) is answered from these
  // bytes; the request's own body is never read again. Text decoded as a web Request's would be.
  const bytes = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  // (Hono keeps promises there, whatever its type says.)
  const cache = c.req.bodyCache as Record<string, Promise<unknown>>;
  cache['arrayBuffer'] = Promise.resolve(bytes);
  cache['text'] = Promise.resolve(utf8.decode(body));
  await next();
}

/** The client went away (or the request timeout cut it off) before its body was complete. */
function cutOff(c: Context): never {
  throw new AppError(400, 'incomplete_body', `the request body of ${c.req.method} ${c.req.path} ended early`);
}
