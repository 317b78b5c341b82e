import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cspDirectives as directives } from '../../../testing/csp.js';
import { inProcessFixture } from '../../../testing/in-process.js';
import { consoleRoutes } from './routes.js';

/** The headers every console answer carries: its own origin only, no frame, no sniffing. */
function expectStrict(res: Response, what: string): void {
  const csp = directives(res.headers.get('content-security-policy') ?? '');
  expect(csp.get('default-src'), what).toEqual(["'self'"]);
  expect(csp.get('script-src'), what).toEqual(["'self'"]);
  expect(csp.get('style-src'), what).toEqual(["'self'"]);
  expect(csp.get('connect-src'), what).toEqual(["'self'"]);
  expect(csp.get('frame-ancestors'), what).toEqual(["'none'"]);
  for (const [name, sources] of csp)
    for (const source of sources) expect(["'self'", "'none'", 'data:'], `${what}: ${name} ${source}`).toContain(source);
  expect(res.headers.get('x-content-type-options'), what).toBe('nosniff');
  expect(res.headers.get('x-frame-options'), what).toBe('DENY');
  expect(res.headers.get('referrer-policy'), what).toBe('no-referrer');
}

/** An answer of the running control plane (@hono/node-server): the app's own middleware headers are kept. */
function expectServed(res: Response, what: string): void {
  expectStrict(res, what);
  expect(res.headers.get('x-request-id'), what).toMatch(/\S/);
}

describe('the web console at /ui', () => {
  const env = inProcessFixture('sqlite');
  let base: string;

  beforeAll(() => {
    base = env.cp.url;
  });

  it('serves the built page at /ui and at every client route below it, without a token and with strict headers', async () => {
    const pages = ['/ui', '/ui/', '/ui/instances', '/ui/instances/ins_0000', '/ui/tasks/tsk_x/anything'];
    const bodies = new Set<string>();
    for (const p of pages) {
      const res = await fetch(`${base}${p}`);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('content-type'), p).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control'), p).toBe('no-cache');
      expectServed(res, p);
      bodies.add(await res.text());
    }
    expect(bodies.size).toBe(1);
    const html = [...bodies][0]!;
    // Nothing inline: every script and style sheet is a file of this origin.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/ui\/assets\//);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b|\sstyle=|\son\w+=/i);
    expect(html).not.toMatch(/https?:\/\//);

    const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.map((r) => r.split('.').pop()).sort()).toEqual(['css', 'js']);
    for (const ref of refs) {
      const res = await fetch(`${base}${ref}`);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get('content-type'), ref).toMatch(ref.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(res.headers.get('cache-control'), ref).toBe('public, max-age=31536000, immutable');
      expectServed(res, ref);
      // The bundle reaches no other origin: it calls this control plane's API by path.
      expect(await res.text(), ref).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    }
  });

  it('answers 404 for an asset it does not have, and never serves a file outside its build', async () => {
    for (const p of ['/ui/assets/nothing.js', '/ui/assets/..%2F..%2Fpackage.json', '/ui/assets/../../package.json']) {
      const res = await fetch(`${base}${p}`);
      if (res.headers.get('content-type')?.startsWith('text/html')) {
        // `..` resolved by the client lands on a client route: the page, not the file.
        expect(await res.text(), p).not.toContain('"name"');
        continue;
      }
      expect(res.status, p).toBe(404);
      // A path the client resolved out of /ui is the API's 404, not the console's.
      if (new URL(res.url).pathname.startsWith('/ui/')) expectServed(res, p);
    }
  });

  it('is no door into the API: /ui answers the page, the API below /v1 still asks for a token', async () => {
    const res = await fetch(`${base}/ui/v1/instances`);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(`${base}/v1/instances`)).status).toBe(401);
    // Only GET and HEAD: a write to /ui is the API's 404.
    const post = await fetch(`${base}/ui/instances`, { method: 'POST' });
    expect(post.status).toBe(404);
    expect(post.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await fetch(`${base}/ui/instances`, { method: 'HEAD' })).status).toBe(200);
  });

  it('answers a clear 503 when the console is not built, and serves it once it is', async () => {
    const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-console-'));
    try {
      const app = consoleRoutes({ dist });
      const res = await app.request('/ui/instances');
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toMatch(/console is not built.*pnpm build/);
      expectStrict(res, 'not built');

      fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>x</title>');
      const later = await app.request('/ui/instances');
      expect(later.status).toBe(200);
      expect(await later.text()).toContain('<title>x</title>');
    } finally {
      fs.rmSync(dist, { recursive: true, force: true });
    }
  });
});
