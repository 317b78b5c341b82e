import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { AppError, ConflictError, InputError } from '../domain/errors.js';
import type { Db } from '../store/db.js';
import type { IdempotencyRepository } from '../store/idempotency-repository.js';
import { inRequestTransaction } from '../store/request-scope.js';
import type { Env } from './auth.js';

export const MUTATING: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Every mutating /v1 request runs in one store transaction: it commits only when the request
 * answers below 400, so a request that fails, however late, leaves no write behind. The one
 * exception is a refusal that must leave a record (an AppError with `commits`, such as
 * maintenance failing an ad-hoc backup): its record commits with its answer.
 *
 * A POST may carry an `Idempotency-Key`. The key belongs to the API token that sent it: the
 * first request with it runs, and its answer is stored in the same transaction as its work; a
 * retry with the same key and request gets the stored answer and does nothing again; the same
 * key with a different request is refused (422); a retry while the first still runs gets 409
 * with Retry-After. A request cut off by a crash committed nothing, and its claim expires after a
 * lease of seconds, after which a retry runs it.
 *
 * A route marked {@link commitsItself} gets no request transaction: its
 * one write commits on its own, in a transaction of its own that is run again when the store
 * picks it as a deadlock victim; then it may wait for an agent, which inside the transaction would
 * hold the store (on SQLite its only writer) while the agent's answer needs it. Its answer is
 * still stored for its Idempotency-Key, once it is known.
 */
export function mutatingRequests(db: Db, repo: IdempotencyRepository): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!MUTATING.has(c.req.method)) return next();
    const key = c.req.method === 'POST' ? c.req.header('idempotency-key') : undefined;
    let claimToken: string | undefined;
    const principalId = c.get('principal').tokenId;
    if (key !== undefined) {
      if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
        throw new InputError('Idempotency-Key must be 1-255 visible ASCII characters', [
          { path: 'header.Idempotency-Key', message: 'not a valid key' },
        ]);
      }
      const hash = createHash('sha256')
        .update(`${c.req.method} ${c.req.path}\n${await c.req.text()}`)
        .digest('hex');
      const claim = await repo.claim(principalId, key, hash);
      switch (claim.state) {
        case 'mismatch':
          throw new AppError(
            422,
            'idempotency_key_reused',
            'this Idempotency-Key was already used with a different request',
          );
        case 'in-progress':
          c.header('Retry-After', String(Math.max(1, Math.ceil(claim.retryAfterMs / 1000))));
          throw new ConflictError(
            'a request with this Idempotency-Key is still being processed',
            'idempotency_in_progress',
          );
        case 'replay':
          c.header('Idempotent-Replayed', 'true');
          if (claim.location) c.header('Location', claim.location);
          return c.body(claim.body, claim.status as 200, { 'Content-Type': 'application/json' });
        case 'new':
          claimToken = claim.claimToken;
      }
    }
    let thrown: unknown;
    let committed = false;
    const work = async () => {
      try {
        await next();
      } catch (err) {
        thrown = err;
        return false;
      }
      // A refusal that records what it refused (maintenance) commits that record with its answer.
      const recorded = c.error instanceof AppError && c.error.commits;
      if (!recorded && (c.error !== undefined || c.res.status >= 400)) return false;
      if (key !== undefined && claimToken !== undefined) {
        await repo.complete(
          principalId,
          key,
          claimToken,
          c.res.status,
          await c.res.clone().text(),
          c.res.headers.get('location'),
        );
      }
      return true;
    };
    try {
      committed = c.get('commitsItself') === true ? await work() : await inRequestTransaction(db, work);
    } finally {
      if (!committed && key !== undefined && claimToken !== undefined) await repo.release(principalId, key, claimToken);
    }
    if (thrown !== undefined) throw thrown;
  };
}

const declared = new WeakMap<object, MiddlewareHandler<Env>>();

/**
 * A route's own middleware that must run before its request's transaction opens (and before its
 * Idempotency-Key is claimed): one that waits for an agent, or {@link commitsItself}. The route
 * lists what this returns in its `middleware`, beside its path and schemas; {@link routesFirst},
 * mounted before {@link mutatingRequests}, finds it among the matched handlers and runs it there.
 * Where the route's own chain reaches it later, it only passes on.
 */
export function beforeTransaction(mw: MiddlewareHandler<Env>): MiddlewareHandler<Env> {
  const marker: MiddlewareHandler<Env> = async (_c, next) => next();
  declared.set(marker, mw);
  return marker;
}

/** Runs the matched route's {@link beforeTransaction} middleware, in its order; mount before {@link mutatingRequests}. */
export const routesFirst: MiddlewareHandler<Env> = async (c, next) => {
  const own = c.req.routeIndex;
  const first = matchedRoutes(c).flatMap((route, i) => {
    const mw = declared.get(route.handler);
    return mw ? [{ i, mw }] : [];
  });
  const run = async (k: number): Promise<void> => {
    const step = first[k];
    if (!step) {
      c.req.routeIndex = own;
      await next();
      return;
    }
    // Its own place in the chain, so that it reads the route's path parameters (c.req.param('id')).
    c.req.routeIndex = step.i;
    const answer = await step.mw(c, () => run(k + 1));
    // One that answers instead of passing on gives the request's answer.
    if (answer instanceof Response) c.res = answer;
  };
  await run(0);
};

/**
 * Marks a route as committing its one write itself (a task it then waits for, or a change that
 * must be retried as a deadlock victim rather than answered 503): {@link mutatingRequests} opens no
 * transaction around it. Listed in the route's `middleware`.
 */
export const commitsItself = beforeTransaction(async (c, next) => {
  c.set('commitsItself', true);
  await next();
});
