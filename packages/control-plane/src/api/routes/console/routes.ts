import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono, type Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/** Where the web console is served; its client routes are below it too. */
export const CONSOLE_BASE = '/ui';

/**
 * The console loads its own files only and talks to this origin only: no inline script, no
 * other origin, no frame around it. Its styles are a file too; progress bars are <progress>.
 */
export const CONSOLE_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

interface Built {
  index: Uint8Array<ArrayBuffer>;
  /** Every other file of the build by its path under /ui (`/assets/index-….js`). */
  files: Map<string, { type: string; body: Uint8Array<ArrayBuffer> }>;
}

/** The installed @cairn/console's dist/ (undefined when the package is not installed). */
function installedDist(): string | undefined {
  try {
    return path.join(path.dirname(createRequire(import.meta.url).resolve('@cairn/console/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

/** The built console, read once from `dist`; undefined when it is not built. */
function load(dist: string | undefined): Built | undefined {
  if (!dist) return undefined;
  if (!fs.existsSync(path.join(dist, 'index.html'))) return undefined;
  const files = new Map<string, { type: string; body: Uint8Array<ArrayBuffer> }>();
  for (const entry of fs.readdirSync(dist, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const rel = `/${path.relative(dist, full).split(path.sep).join('/')}`;
    const type = TYPES[path.extname(entry.name)];
    if (type && rel !== '/index.html') files.set(rel, { type, body: fs.readFileSync(full) });
  }
  return { index: fs.readFileSync(path.join(dist, 'index.html')), files };
}

/**
 * The web console at `/ui`: the static files of @cairn/console, every client route (`/ui/…`)
 * answered with its index.html. It holds no route of the API and no token: the page calls the
 * same API as every client, with the token its user typed.
 */
export function consoleRoutes(
  opts: { /** The build to serve; default the installed package's. */ dist?: string } = {},
) {
  let built: Built | undefined;
  // Read on first use (most processes never serve it), and looked for again until it is there.
  const get = () => (built ??= load(opts.dist ?? installedDist()));
  const app = new Hono();
  const headers = secureHeaders({
    contentSecurityPolicy: CONSOLE_CSP,
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    crossOriginResourcePolicy: 'same-origin',
    crossOriginOpenerPolicy: 'same-origin',
  });
  app.use(CONSOLE_BASE, headers);
  app.use(`${CONSOLE_BASE}/*`, headers);
  const serve = (c: Context, rest: string) => {
    const b = get();
    if (!b) {
      c.header('Cache-Control', 'no-store');
      return c.text('The web console is not built: run `pnpm build` (it builds packages/console).\n', 503);
    }
    const file = b.files.get(rest);
    if (file)
      return c.body(file.body, 200, {
        'Content-Type': file.type,
        // Vite names assets by their content: a browser may keep each for good.
        'Cache-Control': rest.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
    // An asset it does not have is a 404, never the page: a stale page must not run HTML as a script.
    if (rest.startsWith('/assets/')) return c.text('no such console asset\n', 404);
    return c.body(b.index, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
  };
  app.get(CONSOLE_BASE, (c) => serve(c, '/'));
  // Every path below /ui, for GET and HEAD (anything else falls through to the API's 404). A
  // handler in middleware's place: its paths are the client's, documented as `/ui/{path}`.
  app.use(`${CONSOLE_BASE}/*`, async (c, next) =>
    c.req.method === 'GET' || c.req.method === 'HEAD' ? serve(c, c.req.path.slice(CONSOLE_BASE.length)) : next(),
  );
  return app;
}
