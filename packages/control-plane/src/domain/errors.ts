/**
 * The few error kinds the API answers with; one handler maps them to problem+json.
 * Domain and store code throw these; routes never build error responses themselves.
 */
export class AppError extends Error {
  /** True when what the request wrote before this answer must be committed with it. */
  readonly commits: boolean = false;
  /** Further members of the problem body (ids of what was recorded). */
  readonly extensions: Record<string, string | number> = {};

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

export class InputError extends AppError {
  override readonly name = 'InputError';
  constructor(message: string, errors?: { path: string; message: string }[], code = 'invalid_input') {
    super(400, code, message, errors);
  }
}
/**
 * Refused for want of a valid credential. `tokenGiven` says whether one was sent (and is wrong,
 * used or expired) or none was: the `WWW-Authenticate` challenge tells the two apart.
 */
export class UnauthorizedError extends AppError {
  override readonly name = 'UnauthorizedError';
  constructor(
    message = 'missing or invalid bearer token',
    readonly tokenGiven = true,
  ) {
    super(401, 'unauthorized', message);
  }
}

/**
 * The `WWW-Authenticate` header of every 401 (RFC 6750): the scheme and realm, and
 * `error="invalid_token"` when a token was sent but is not good.
 */
export function bearerChallenge(tokenGiven: boolean): string {
  return `Bearer realm="cairn"${tokenGiven ? ', error="invalid_token"' : ''}`;
}
export class ForbiddenError extends AppError {
  override readonly name = 'ForbiddenError';
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}
/**
 * A tenant named a zone where it has no backup offering (its own or granted): 403
 * `zone_not_offered`, the zone named in `zone`. A tenant works only in the zones it is offered.
 */
export class ZoneNotOfferedError extends AppError {
  override readonly name = 'ZoneNotOfferedError';
  override readonly extensions: Record<string, string>;
  constructor(zone: string) {
    super(403, 'zone_not_offered', `zone ${zone}: no backup offering is granted to this tenant there`, [
      { path: 'zone', message: 'no offering in this zone' },
    ]);
    this.extensions = { zone };
  }
}
export class NotFoundError extends AppError {
  override readonly name = 'NotFoundError';
  constructor(what: string, id: string) {
    super(404, 'not_found', `${what} ${id} not found`);
  }
}
/** What the request names was kept once and is forgotten now (410): reading again from `extensions` works. */
export class GoneError extends AppError {
  override readonly name = 'GoneError';
  override readonly extensions: Record<string, string | number>;
  constructor(code: string, message: string, extensions: Record<string, string | number>) {
    super(410, code, message);
    this.extensions = extensions;
  }
}
export class ConflictError extends AppError {
  override readonly name = 'ConflictError';
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}
export class UnavailableError extends AppError {
  override readonly name = 'UnavailableError';
  constructor(message: string, code = 'unavailable') {
    super(503, code, message);
  }
}

/**
 * Work refused because maintenance covers it: 503 `maintenance`, the maintenance message as the
 * detail. What the refusal recorded (a failed task, a job run whose instances went to ERROR) is
 * committed with the answer and named in it (`taskId`, `runId`), so the tenant finds it later.
 */
export class MaintenanceError extends AppError {
  override readonly name = 'MaintenanceError';
  override readonly commits = true;
  override readonly extensions: Record<string, string>;
  constructor(message: string, recorded: { taskId: string } | { runId: string }) {
    super(503, 'maintenance', message);
    this.extensions = { ...recorded };
  }
}

/**
 * A job run whose every instance its offering no longer allows the job to back up: 403
 * `not_allowed` naming why. The run (its instances in ERROR) is committed with the answer and
 * named in it (`runId`).
 */
export class NotAllowedError extends AppError {
  override readonly name = 'NotAllowedError';
  override readonly commits = true;
  override readonly extensions: Record<string, string>;
  constructor(message: string, recorded: { runId: string }) {
    super(403, 'not_allowed', message);
    this.extensions = { ...recorded };
  }
}

/**
 * Over a tenant's count quota: 403 `quota_exceeded`, the quota, its limit and the usage named in
 * the detail and as `quota`, `limit` and `used`. Nothing of the request is written.
 */
export class QuotaExceededError extends AppError {
  override readonly name = 'QuotaExceededError';
  override readonly extensions: Record<string, string | number>;
  constructor(exceeded: { quota: string; limit: number; used: number; message: string; offeringId?: string }) {
    super(403, 'quota_exceeded', exceeded.message);
    this.extensions = {
      quota: exceeded.quota,
      limit: exceeded.limit,
      used: exceeded.used,
      ...(exceeded.offeringId !== undefined ? { offeringId: exceeded.offeringId } : {}),
    };
  }
}

/** Over a limit on what is held at once: 429 with `Retry-After`, the code and `quota` naming the limit. */
export class TooManyError extends AppError {
  override readonly name = 'TooManyError';
  override readonly extensions: Record<string, string>;
  constructor(
    code: string,
    message: string,
    readonly retryAfterS: number,
    quota: string,
  ) {
    super(429, code, message);
    this.extensions = { quota };
  }
}

/** The provider (through its plugin on an agent) failed or did not answer in time. */
export class UpstreamError extends AppError {
  override readonly name = 'UpstreamError';
  constructor(status: 502 | 504, code: string, message: string) {
    super(status, code, message);
  }
}
