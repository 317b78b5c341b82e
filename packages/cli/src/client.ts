/**
 * The HTTP client of the control plane's API: bearer token, JSON in and out, problems turned into
 * errors carrying cairn's exit codes, and cursor paging.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT } from './exit.js';
import type { Target } from './config.js';

export const CLI_VERSION = '0.1.0';

/** How long one request may take before the server counts as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How many times a request refused for its tenant's request rate (`429 too_many_requests`: the
 * server did nothing of it) is sent again, each after the `Retry-After` it was given.
 */
const RATE_RETRIES = 5;
/** The longest of those waits, whatever `Retry-After` says, in seconds. */
const RATE_WAIT_MAX_S = 30;

/** An RFC 9457 problem as the API answers it. */
export interface Problem {
  status: number;
  code?: string;
  title?: string;
  detail?: string;
  errors?: { path: string; message: string }[];
  taskId?: string;
  [key: string]: unknown;
}

/** The server refused a request: exit 4 for 404, else 3. The message holds the detail and code. */
export class ApiError extends CliError {
  constructor(
    readonly problem: Problem,
    readonly method: string,
    readonly path: string,
  ) {
    super(problem.status === 404 ? EXIT.notFound : EXIT.api, formatProblem(problem));
    this.name = 'ApiError';
  }
}

/** The lines a problem is shown as on stderr: its detail, code and status, the fields it names. */
export function formatProblem(p: Problem): string {
  const what = p.detail ?? p.title ?? 'request refused';
  const lines = [`${what} (${p.code ?? 'error'}, HTTP ${p.status})`];
  for (const e of Array.isArray(p.errors) ? p.errors : []) lines.push(`  ${e.path}: ${e.message}`);
  if (typeof p.taskId === 'string') lines.push(`  task: ${p.taskId}`);
  return lines.join('\n');
}

/** Why a fetch failed without an answer, in a few words (`ECONNREFUSED`, a timeout, …). */
function networkCause(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

export type Query = Record<string, string | number | undefined>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export class Client {
  /** `note`: told, one line at a time, what the client does on its own (a wait before sending again). */
  constructor(
    readonly target: Target,
    private readonly note: (line: string) => void = () => {},
  ) {}

  url(path: string, query: Query = {}): string {
    const u = new URL(this.target.url + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** Opens a request and answers the raw response: for the event stream. Network errors exit 6. */
  async open(path: string, init: { query?: Query; headers?: Record<string, string>; signal?: AbortSignal }) {
    try {
      return await fetch(this.url(path, init.query), {
        headers: {
          authorization: `Bearer ${this.target.token}`,
          'user-agent': `cairn-cli/${CLI_VERSION}`,
          ...init.headers,
        },
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (err) {
      throw new CliError(EXIT.unreachable, `cannot reach ${this.target.url}: ${networkCause(err)}`);
    }
  }

  async request<T = unknown>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.target.token}`,
      accept: 'application/json',
      'user-agent': `cairn-cli/${CLI_VERSION}`,
    };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    for (let sent = 1; ; sent++) {
      try {
        res = await fetch(this.url(path, opts.query), {
          method,
          headers,
          ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        throw new CliError(EXIT.unreachable, `cannot reach ${this.target.url}: ${networkCause(err)}`);
      }
      if (res.status !== 429 || sent > RATE_RETRIES) break;
      const refusal = await res
        .clone()
        .json()
        .catch(() => undefined);
      if ((refusal as Problem | undefined)?.code !== 'too_many_requests') break;
      const waitS = Math.min(RATE_WAIT_MAX_S, Math.max(0, Number(res.headers.get('retry-after')) || 0));
      this.note(`${method} ${path}: the server's request rate for this tenant is used up; sending again in ${waitS} s`);
      await res.body?.cancel();
      await sleep(waitS * 1000);
    }
    const text = await res.text();
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        if (res.ok)
          throw new CliError(
            EXIT.api,
            `${method} ${path}: the server answered ${res.status} with a body that is not JSON`,
          );
      }
    }
    if (!res.ok) {
      const problem: Problem =
        typeof body === 'object' && body !== null
          ? { ...(body as Problem), status: res.status }
          : { status: res.status, detail: `${method} ${path}: ${text.slice(0, 200) || res.statusText}` };
      throw new ApiError(problem, method, path);
    }
    return body as T;
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query ? { query } : {});
  }

  /**
   * One page of a list, or with `all` every page, following nextCursor until there is none (a
   * filtered page may be short or empty and still have one; the event log answers its end with
   * an empty page and none).
   */
  async list<T>(
    path: string,
    query: Query,
    paging: { limit?: number; cursor?: string; all?: boolean },
  ): Promise<Page<T>> {
    const q: Query = { ...query, limit: paging.limit, cursor: paging.cursor };
    const first = await this.get<Page<T>>(path, q);
    if (!paging.all) return first;
    const items = [...first.items];
    let next = first.nextCursor;
    while (next !== null) {
      const page = await this.get<Page<T>>(path, { ...q, cursor: next });
      items.push(...page.items);
      next = page.nextCursor;
    }
    return { items, nextCursor: null };
  }
}
