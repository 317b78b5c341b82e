import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError, ConflictError, InputError } from '../domain/errors.js';
import type { IdempotencyRepository } from '../store/idempotency-repository.js';
import type { Env } from './auth.js';

/**
 * `Idempotency-Key` on creating calls (POST): the first request with a key runs and its 2xx
 * answer is stored; a retry with the same key and the same request gets the stored answer and
 * does nothing again; the same key with a different request is refused (422).
 */
export function idempotency(repo: IdempotencyRepository): MiddlewareHandler<Env> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (c.req.method !== 'POST' || key === undefined) return next();
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new InputError('Idempotency-Key must be 1-255 visible ASCII characters', [
        { path: 'header.Idempotency-Key', message: 'not a valid key' },
      ]);
    }
    const tenantId = c.get('principal').tenantId;
    const hash = createHash('sha256')
      .update(`${c.req.method} ${c.req.path}\n${await c.req.text()}`)
      .digest('hex');
    const claim = await repo.claim(tenantId, key, hash);
    if (claim.state === 'mismatch') {
      throw new AppError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was already used with a different request',
      );
    }
    if (claim.state === 'in-progress') {
      throw new ConflictError(
        'a request with this Idempotency-Key is still being processed',
        'idempotency_in_progress',
      );
    }
    if (claim.state === 'replay') {
      c.header('Idempotent-Replayed', 'true');
      if (claim.location) c.header('Location', claim.location);
      return c.body(claim.body, claim.status as 200, { 'Content-Type': 'application/json' });
    }
    try {
      await next();
    } catch (err) {
      await repo.release(tenantId, key);
      throw err;
    }
    if (c.res.status >= 200 && c.res.status < 300) {
      await repo.complete(tenantId, key, c.res.status, await c.res.clone().text(), c.res.headers.get('location'));
    } else {
      await repo.release(tenantId, key);
    }
  };
}
