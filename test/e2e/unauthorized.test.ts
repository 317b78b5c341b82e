import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { withStack } from '@cairn/test-harness/stack';

const CHALLENGE = 'Bearer realm="cairn"';
const INVALID = 'Bearer realm="cairn", error="invalid_token"';

/** The status and WWW-Authenticate of an agent's WebSocket upgrade. */
function upgrade(url: string, authorization?: string): Promise<{ status: number; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/agent`, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
        ...(authorization ? { authorization } : {}),
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, challenge: res.headers['www-authenticate'] });
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('the upgrade was accepted'));
    });
    req.on('error', reject);
    req.end();
  });
}

// Answers the same on every store: SQLite is enough.
describe('401 answers say how to authenticate (WWW-Authenticate, RFC 6750)', () => {
  const stack = withStack('sqlite');

  it('challenges for a bearer token on every 401, with error="invalid_token" when the token sent is wrong', async () => {
    const { cp } = stack;
    const cases: { what: string; init: RequestInit & { path: string }; challenge: string }[] = [
      { what: 'no token', init: { path: '/v1/instances' }, challenge: CHALLENGE },
      {
        what: 'another scheme',
        init: { path: '/v1/instances', headers: { authorization: 'Basic dXNlcjpwYXNz' } },
        challenge: CHALLENGE,
      },
      {
        what: 'an unknown token',
        init: { path: '/v1/instances', headers: { authorization: 'Bearer not-a-token-0123456789' } },
        challenge: INVALID,
      },
      {
        what: 'an unknown token on a write',
        init: {
          path: '/v1/tenants',
          method: 'POST',
          headers: { authorization: 'Bearer not-a-token-0123456789', 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'x' }),
        },
        challenge: INVALID,
      },
      {
        what: 'a bad enrollment token',
        init: {
          path: '/v1/agents/enroll',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token: 'not-an-enrollment-token', name: 'host' }),
        },
        challenge: INVALID,
      },
    ];
    for (const { what, init, challenge } of cases) {
      const res = await fetch(`${cp.url}${init.path}`, init);
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toBe(challenge);
      expect(((await res.json()) as { code: string }).code, what).toBe('unauthorized');
    }
    expect(await upgrade(cp.url)).toEqual({ status: 401, challenge: CHALLENGE });
    expect(await upgrade(cp.url, 'Bearer not-an-agent-credential')).toEqual({ status: 401, challenge: INVALID });
    // Other refusals carry no challenge.
    const forbidden = await fetch(`${cp.url}/v1/nowhere`, { headers: { authorization: `Bearer ${cp.adminToken}` } });
    expect(forbidden.status).toBe(404);
    expect(forbidden.headers.get('www-authenticate')).toBeNull();
  });
});
