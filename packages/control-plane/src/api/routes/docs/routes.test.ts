import { beforeAll, describe, expect, it } from 'vitest';
import { cspDirectives as directives } from '../../../testing/csp.js';
import { inProcessFixture } from '../../../testing/in-process.js';

/** What a page or a style sheet loads: src and href attributes, url(…) and @import. */
function loads(text: string): string[] {
  const patterns = [
    /\b(?:src|href)\s*=\s*["']([^"']+)["']/gi,
    /\burl\(\s*["']?([^"')]+)["']?\s*\)/gi,
    /@import\s+["']([^"']+)["']/gi,
  ];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]!));
}

/** What a script loads by itself: static and dynamic imports, importScripts. */
function scriptLoads(js: string): string[] {
  const patterns = [
    /(?:^|[;\s])import\s[^;'"`]*?from\s*["'`]([^"'`]+)["'`]/g,
    /(?:^|[;\s])import\s*["'`]([^"'`]+)["'`]/g,
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]/g,
    /\bimportScripts\s*\(\s*["'`]([^"'`]+)["'`]/g,
  ];
  return patterns.flatMap((p) => [...js.matchAll(p)].map((m) => m[1]!));
}

describe('the reference page at /docs', () => {
  const env = inProcessFixture('sqlite');
  let base: string;

  beforeAll(() => {
    base = env.cp.url;
  });

  /** A load that would leave this control plane: another origin (data: URIs load nothing). */
  const foreign = (ref: string) => !ref.startsWith('data:') && new URL(ref, base).origin !== new URL(base).origin;

  it('loads nothing from another origin: the page and each of its assets come from the control plane, without a token', async () => {
    const res = await fetch(`${base}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    const refs = loads(html);
    expect(refs.filter(foreign)).toEqual([]);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    // Every script is a file of its own: nothing inline that could load or configure otherwise.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b/i);

    // The browser itself refuses any other origin: every source is the page's own (or data:).
    const csp = directives(res.headers.get('content-security-policy') ?? '');
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('script-src')).toEqual(["'self'"]);
    for (const [name, sources] of csp)
      for (const source of sources)
        expect(["'self'", "'none'", "'unsafe-inline'", 'data:'], `${name} ${source}`).toContain(source);

    const types = { js: /^text\/javascript/, css: /^text\/css/, png: /^image\/png$/ } as const;
    const seen = new Set<string>();
    for (const ref of refs) {
      const asset = await fetch(new URL(ref, base));
      expect(asset.status, ref).toBe(200);
      const ext = ref.split('.').pop() as keyof typeof types;
      expect(asset.headers.get('content-type'), ref).toMatch(types[ext]);
      expect(asset.headers.get('cache-control'), ref).toBe('public, max-age=31536000, immutable');
      expect(asset.headers.get('x-content-type-options'), ref).toBe('nosniff');
      seen.add(ext);
      const text = ext === 'png' ? '' : await asset.text();
      if (ext === 'css') expect(loads(text).filter(foreign), ref).toEqual([]);
      if (ext === 'js') expect(scriptLoads(text).filter(foreign), ref).toEqual([]);
    }
    expect([...seen].sort()).toEqual(['css', 'js', 'png']);

    // Swagger UI's own settings: this control plane's contract, and no validator badge from
    // validator.swagger.io (its default).
    const init = refs.find((r) => r.endsWith('/init.js'))!;
    const settings = await (await fetch(new URL(init, base))).text();
    expect(settings).toContain("url: '/openapi.json'");
    expect(settings).toContain('validatorUrl: null');
    expect(settings).not.toMatch(/https?:/);
  });

  it('answers 404 for an asset it does not have, or under a tag it no longer serves', async () => {
    const html = await (await fetch(`${base}/docs`)).text();
    const bundle = loads(html).find((r) => r.endsWith('/swagger-ui-bundle.js'))!;
    for (const path of [
      bundle.replace('swagger-ui-bundle.js', 'index.html'),
      bundle.replace('swagger-ui-bundle.js', '..%2Fpackage.json'),
      bundle.replace(/\/assets\/[^/]+\//, '/assets/0000000000000000/'),
    ]) {
      const res = await fetch(new URL(path, base));
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
