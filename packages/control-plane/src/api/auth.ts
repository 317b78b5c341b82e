import type { Context, MiddlewareHandler } from 'hono';
import { isSpAdmin, type Principal } from '../domain/access.js';
import { ForbiddenError, UnauthorizedError } from '../domain/errors.js';
import type { TenantRepository } from '../store/tenant-repository.js';

export type Env = {
  Variables: {
    principal: Principal;
    /** The request commits its one write itself, then waits for an agent (see `commitsItself`). */
    commitsItself?: boolean;
  };
};

/** Resolves the bearer token to a principal; every /v1 route but enrollment exchange needs one. */
export function bearerAuth(tenants: Pick<TenantRepository, 'principalForToken'>): MiddlewareHandler<Env> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new UnauthorizedError('missing bearer token (Authorization: Bearer <token>)', false);
    const principal = await tenants.principalForToken(match[1]!);
    if (!principal) throw new UnauthorizedError('bearer token is not valid');
    c.set('principal', principal);
    await next();
  };
}

export function principal(c: Context<Env>): Principal {
  return c.get('principal');
}

/** Route middleware for sp-admin-only routes; runs before body validation, so a tenant gets 403, not 400. */
export const spAdminOnly: MiddlewareHandler<Env> = async (c, next) => {
  if (!isSpAdmin(principal(c))) throw new ForbiddenError('this operation needs the sp-admin role');
  await next();
};
