/**
 * The HTTP bench's baseline: a bare Hono hello on @hono/node-server, the same server stack the
 * control plane uses, with nothing behind it. Prints its port on the first stdout line.
 *
 * Usage (started by http.ts): node --import tsx bench/hello-server.ts
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.get('/', (c) => c.text('hi'));
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => process.stdout.write(`${info.port}\n`));
