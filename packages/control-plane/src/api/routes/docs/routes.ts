import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import { problem } from '../../problem.js';

/** Where the reference page's assets are served: `/docs/assets/<tag>/<file>`. */
export const DOCS_ASSETS = '/docs/assets';

/**
 * The Swagger UI settings: the contract of this control plane, and no validator badge (Swagger
 * UI's default sends the whole document to validator.swagger.io and shows its answer).
 */
const INIT_JS = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

const PAGE_CSS = 'body { margin: 0; background: #fafafa; }\n';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const PNG = 'image/png';

/**
 * The page may load from its own origin only: the browser itself refuses anything else (inline
 * styles are React's `style` attributes; images in Swagger UI's CSS are `data:` URIs).
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Uint8Array<ArrayBuffer>;
}

interface Docs {
  tag: string;
  page: string;
  assets: Map<string, Asset>;
}

/** The assets, read once from the installed swagger-ui-dist; the tag changes with their contents. */
function load(): Docs {
  const dist = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const fromDist = (file: string, type: string): [string, Asset] => [
    file,
    { type, body: fs.readFileSync(path.join(dist, file)) },
  ];
  const assets = new Map<string, Asset>([
    fromDist('swagger-ui-bundle.js', JS),
    fromDist('swagger-ui.css', CSS),
    fromDist('favicon-32x32.png', PNG),
    fromDist('favicon-16x16.png', PNG),
    ['init.js', { type: JS, body: Buffer.from(INIT_JS) }],
    ['page.css', { type: CSS, body: Buffer.from(PAGE_CSS) }],
  ]);
  const hash = createHash('sha256');
  for (const [name, asset] of assets) hash.update(name).update(asset.body);
  const tag = hash.digest('hex').slice(0, 16);
  const at = (file: string) => `${DOCS_ASSETS}/${tag}/${file}`;
  const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Cairn API</title>
    <link rel="stylesheet" href="${at('swagger-ui.css')}" />
    <link rel="stylesheet" href="${at('page.css')}" />
    <link rel="icon" type="image/png" sizes="32x32" href="${at('favicon-32x32.png')}" />
    <link rel="icon" type="image/png" sizes="16x16" href="${at('favicon-16x16.png')}" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${at('swagger-ui-bundle.js')}"></script>
    <script src="${at('init.js')}"></script>
  </body>
</html>
`;
  return { tag, page, assets };
}

/**
 * The API reference page at `/docs`: Swagger UI from the installed, pinned swagger-ui-dist, every
 * asset served from here, so the page works on a machine without internet. No token needed.
 */
export function docsRoutes() {
  let docs: Docs | undefined;
  // Read on first use: most processes (and tests) never open the page.
  const get = () => (docs ??= load());
  const app = new Hono();
  app.get('/docs', (c) =>
    c.html(get().page, 200, { 'Cache-Control': 'no-cache', 'Content-Security-Policy': DOCS_CSP }),
  );
  app.get(`${DOCS_ASSETS}/:tag/:file`, (c) => {
    const { tag, assets } = get();
    const asset = c.req.param('tag') === tag ? assets.get(c.req.param('file')) : undefined;
    if (!asset) return problem(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`);
    // The tag changes whenever an asset does: a browser may keep each one for good.
    return c.body(asset.body, 200, {
      'Content-Type': asset.type,
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
    });
  });
  return app;
}
