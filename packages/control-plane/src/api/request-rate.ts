import type { MiddlewareHandler } from 'hono';
import { isSpAdmin } from '../domain/access.js';
import { TooManyError } from '../domain/errors.js';
import { RequestBudgets } from '../domain/rate-limit.js';
import { principal, type Env } from './auth.js';
import { isRunAgain } from './busy-store.js';

/**
 * Each tenant's API requests on this process, counted against its budget (`burst` at once,
 * refilled at `perSecond`) once its token is known and before any route or store work: one more
 * is `429 too_many_requests` with `Retry-After` and `quota: requestRate`, and changes nothing.
 * The sp-admin, who runs the service, is not counted; nor is a request the control plane runs
 * again itself after a busy store (its client made it once).
 */
export function tenantRequestRate(settings: { perSecond: number; burst: number }): MiddlewareHandler<Env> {
  const budgets = new RequestBudgets(settings);
  return async (c, next) => {
    const p = principal(c);
    if (!isSpAdmin(p) && !isRunAgain(c.req.raw)) {
      const waitMs = budgets.take(p.tenantId, performance.now());
      if (waitMs > 0) {
        throw new TooManyError(
          'too_many_requests',
          `tenant ${p.tenantId} made more API requests than it may on this control plane (${settings.burst} at once, then ${settings.perSecond} a second: requestRate); retry later`,
          Math.max(1, Math.ceil(waitMs / 1000)),
          'requestRate',
        );
      }
    }
    await next();
  };
}
