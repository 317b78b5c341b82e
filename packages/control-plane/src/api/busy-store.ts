import { setTimeout as sleep } from 'node:timers/promises';
import type { MiddlewareHandler } from 'hono';
import type { Env } from './auth.js';
import { bufferedBody } from './body.js';
import { MUTATING } from './idempotency.js';

/** The waits before each run again, in ms (each jittered between half and one and a half of it). */
export const BUSY_WAITS_MS: readonly number[] = [25, 50, 100, 200];

const again = new WeakSet<Request>();

/** True for a request this control plane made itself to run a refused one again. */
export function isRunAgain(req: Request): boolean {
  return again.has(req);
}

/**
 * A mutating request that the store refused as busy (chosen as a deadlock victim, a lock wait that
 * timed out, SQLite's write lock held elsewhere) was rolled back whole, so it is safe to run
 * again, and its client would only do the same after a 503. The control plane runs it again
 * itself, with the same body, headers and request id, after a short jittered wait, up to
 * {@link BUSY_WAITS_MS}.length times; only if every run is refused does the client get
 * `503 store_busy` (with Retry-After). A route that commits its write itself
 * (`commitsItself`) retries its own transaction and is not run again here: its write may have
 * committed before it waited for an agent.
 *
 * Mounted after the request id and metrics middleware; `app` is the app it is mounted on.
 */
export function runAgainWhenBusy(
  app: { fetch: (req: Request, env: unknown) => Response | Promise<Response> },
  onRunAgain: (run: number) => void,
): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (again.has(c.req.raw) || !MUTATING.has(c.req.method)) return next();
    await next();
    for (let run = 0; run < BUSY_WAITS_MS.length; run++) {
      if (c.get('commitsItself') === true || !(await storeBusy(c.res))) return;
      const wait = BUSY_WAITS_MS[run]!;
      await sleep(wait / 2 + Math.random() * wait);
      const headers = new Headers(c.req.raw.headers);
      headers.set('x-request-id', c.get('requestId'));
      const body = bufferedBody(c);
      const req = new Request(c.req.url, { method: c.req.method, headers, ...(body ? { body } : {}) });
      again.add(req);
      onRunAgain(run + 1);
      const res = await app.fetch(req, c.env);
      // Not merged with the refused answer's headers (its Retry-After is not this answer's).
      c.res = undefined as unknown as Response;
      c.res = res;
    }
  };
}

async function storeBusy(res: Response): Promise<boolean> {
  if (res.status !== 503) return false;
  const body = (await res
    .clone()
    .json()
    .catch(() => undefined)) as { code?: unknown } | undefined;
  return body?.code === 'store_busy';
}
