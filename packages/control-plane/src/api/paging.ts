import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { badCursor, type Page, type PageRequest } from '../store/page.js';

/** Bytes of HMAC-SHA256 kept in a cursor: 128 bits, beyond guessing. */
const MAC_BYTES = 16;
/** What a repository hands out as a cursor (base64url of a row's key). */
const INNER = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * Cursors bound to the list that handed them out. A repository's cursor (the position after the
 * last row of a page) leaves the API as `<cursor>.<mac>`, the mac an HMAC over the list's path
 * (`/v1/tasks/{id}/progress` with its id) and that cursor, under a key of this deployment. So a
 * cursor comes back only from where it was given: a forged one, one changed by hand or one of
 * another list is `400 bad_cursor` before any repository sees it.
 *
 * @example
 * const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.tenants.list(q));
 */
export class ListCursors {
  constructor(private readonly key: Buffer) {}

  /** Runs `list` with the cursor it handed out earlier, and answers its page with a cursor sealed to this list. */
  async page<Q extends PageRequest, P extends Pick<Page<unknown>, 'nextCursor'>>(
    c: Context,
    query: Q,
    list: (query: Q) => Promise<P>,
  ): Promise<P> {
    const where = c.req.path;
    const page = await list(query.cursor === undefined ? query : { ...query, cursor: this.open(where, query.cursor) });
    return page.nextCursor === null
      ? page
      : { ...page, nextCursor: `${page.nextCursor}.${this.mac(where, page.nextCursor)}` };
  }

  private open(where: string, cursor: string): string {
    const dot = cursor.lastIndexOf('.');
    if (dot < 0) throw badCursor();
    const inner = cursor.slice(0, dot);
    const given = Buffer.from(cursor.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(where, inner), 'base64url');
    if (!INNER.test(inner) || given.length !== expected.length || !timingSafeEqual(given, expected)) throw badCursor();
    return inner;
  }

  private mac(where: string, inner: string): string {
    return createHmac('sha256', this.key)
      .update(`${where}\n${inner}`)
      .digest()
      .subarray(0, MAC_BYTES)
      .toString('base64url');
  }
}
