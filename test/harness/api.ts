/** A tiny HTTP client for the tests: every call returns status, headers and parsed body. */
export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export class Api {
  constructor(
    readonly url: string,
    readonly token: string,
    /** Over TLS: a fetch that trusts the control plane's certificate (ControlPlaneProc.fetch). */
    private readonly fetch: typeof globalThis.fetch = globalThis.fetch,
  ) {}

  async call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const send = () =>
      this.fetch(`${this.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    let res: Response;
    try {
      res = await send();
    } catch (err) {
      // A kept-alive connection the server closed as idle just as this request went out on it
      // (Node closes idle ones after 5 s; under load the client's own timer comes late): the
      // server never read the request, so it is sent once more on a new connection. A server
      // that is down fails the second send too.
      if (!closedIdle(err)) throw err;
      res = await send();
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  get<T = any>(path: string) {
    return this.call<T>('GET', path);
  }
  post<T = any>(path: string, body?: unknown) {
    return this.call<T>('POST', path, body);
  }
  put<T = any>(path: string, body?: unknown) {
    return this.call<T>('PUT', path, body);
  }

  /** Like call, but throws unless the status is the expected one. */
  async expect<T = any>(status: number, method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.call<T>(method, path, body);
    if (r.status !== status)
      throw new Error(`${method} ${path}: expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

/** fetch failed because the server closed the kept-alive connection before any answer. */
function closedIdle(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code === 'UND_ERR_SOCKET' && cause.message === 'other side closed';
}
