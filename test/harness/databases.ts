import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';

export type Backend = 'sqlite' | 'mysql';

/** The backends this run covers: SQLite always, MySQL when CAIRN_TEST_MYSQL_URL is set. */
export const backends: Backend[] = process.env['CAIRN_TEST_MYSQL_URL'] ? ['sqlite', 'mysql'] : ['sqlite'];

export interface TestDatabase {
  backend: Backend;
  url: string;
  /** A directory for the control plane's data (SQLite file, secret key). */
  dataDir: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database: a new SQLite file, or a new logical MySQL database (utf8mb4_bin unless
 * `serverCollation`, which takes the server's default, as a database created by hand would).
 */
export async function freshDatabase(backend: Backend, opts: { serverCollation?: boolean } = {}): Promise<TestDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-test-'));
  if (backend === 'sqlite') {
    return {
      backend,
      url: `sqlite:${path.join(dataDir, 'cairn.db')}`,
      dataDir,
      drop: () => Promise.resolve(fs.rmSync(dataDir, { recursive: true, force: true })),
    };
  }
  const base = process.env['CAIRN_TEST_MYSQL_URL'];
  if (!base) throw new Error('CAIRN_TEST_MYSQL_URL is not set');
  const name = `cairn_t_${randomBytes(6).toString('hex')}`;
  const server = new URL(base);
  server.pathname = '/';
  const conn = await createConnection(server.toString());
  await conn.query(
    opts.serverCollation
      ? `CREATE DATABASE \`${name}\``
      : `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  );
  await conn.end();
  const url = new URL(server.toString());
  url.pathname = `/${name}`;
  return {
    backend,
    url: url.toString(),
    dataDir,
    async drop() {
      const c = await createConnection(server.toString());
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
