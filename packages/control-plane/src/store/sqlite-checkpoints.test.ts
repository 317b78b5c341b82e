import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, transact, type Store } from './db.js';
import {
  BACKSTOP_PAGES,
  DEFAULT_AUTOCHECKPOINT_PAGES,
  startCheckpointer,
  type CheckpointReport,
} from './sqlite-checkpoints.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-checkpoints-'));
  file = path.join(dir, 'cairn.db');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The writer's own checkpoint threshold, read on the writer (a transaction runs there). */
async function writerThreshold(store: Store): Promise<number> {
  const { rows } = await transact(store.db, (trx) =>
    sql<Record<string, number>>`pragma wal_autocheckpoint`.execute(trx),
  );
  return Number(Object.values(rows[0]!)[0]);
}

/** Writes `chunks` transactions of 64 KB each (16 pages of 4 KB). */
async function write(store: Store, chunks: number): Promise<void> {
  for (let i = 0; i < chunks; i++)
    await transact(store.db, (trx) =>
      sql`insert into ballast (data) values (${Buffer.alloc(64 * 1024, i % 251)})`.execute(trx),
    );
}

/**
 * The log once the worker has copied it whole, as two reports in a row give it (a report posted
 * before the last write may still be on its way: it is passed over); fails after 30 s.
 */
async function wholeLogCopied(reports: CheckpointReport[]): Promise<CheckpointReport> {
  // Reports already delivered to this thread are taken in first, then dropped.
  await new Promise((resolve) => setImmediate(resolve));
  reports.length = 0;
  const deadline = Date.now() + 30_000;
  const whole = (r: CheckpointReport | undefined) => r !== undefined && r.checkpointed === r.log;
  return new Promise((resolve, reject) => {
    const look = () => {
      const i = reports.findIndex(
        (r, k) => k > 0 && whole(r) && whole(reports[k - 1]) && reports[k - 1]!.log === r.log,
      );
      if (i > 0) return resolve(reports[i]!);
      if (Date.now() > deadline)
        return reject(new Error(`the log was not copied whole: ${JSON.stringify(reports.slice(-3))}`));
      setTimeout(look, 20);
    };
    look();
  });
}

describe("a SQLite store's checkpoints", () => {
  it("are made by a worker thread, not in the writer's commits, and the log starts over after each", async () => {
    const store = openStore(`sqlite:${file}`);
    try {
      const reports: CheckpointReport[] = [];
      store.checkpoints!.onReport((r) => reports.push(r));
      await sql`create table ballast (id integer primary key, data blob)`.execute(store.db);
      expect(await writerThreshold(store)).toBe(BACKSTOP_PAGES);

      // 2,400 pages of log, past SQLite's own threshold of 1,000: copied by the worker.
      await write(store, 150);
      const copied = await wholeLogCopied(reports);
      expect(copied.log).toBeGreaterThan(16);
      // A write after the log was copied whole goes at its start again (SQLite starts it over when
      // no reader is in it at that moment: a checkpoint's own brief look may put it off once).
      let next = copied;
      let small = 0;
      while (next.log >= copied.log && small < 20) {
        await write(store, 1);
        small++;
        next = await wholeLogCopied(reports);
      }
      expect(next.log).toBeLessThan(copied.log);
      expect(next.log).toBeLessThanOrEqual(32);
      await write(store, 150 - small);
      await wholeLogCopied(reports);
      const rows = await sql<{ n: number }>`select count(*) as n from ballast`.execute(store.db);
      expect(Number(rows.rows[0]!.n)).toBe(300);
    } finally {
      await store.close();
    }
    // The worker closed its connection before the writer closed: the writer's was the last, and
    // took the log with it.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const reopened = new SQLite(file, { readonly: true });
    expect(reopened.prepare('select count(*) as n from ballast').get()).toEqual({ n: 300 });
    reopened.close();
  });

  it('go back to the writer, at SQLite’s own threshold, when the worker cannot run', async () => {
    const writer = new SQLite(file);
    writer.pragma('journal_mode = WAL');
    const checkpoints = startCheckpointer(writer, file, { sqliteModule: path.join(dir, 'no-such-module') });
    try {
      const failure = await new Promise<Error>((resolve) => checkpoints.onFailure(resolve));
      expect(failure.message).toContain('no-such-module');
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(DEFAULT_AUTOCHECKPOINT_PAGES);
      // Told at once to a listener that comes after.
      await expect(new Promise<Error>((resolve) => checkpoints.onFailure(resolve))).resolves.toBe(failure);
    } finally {
      await checkpoints.stop();
      writer.close();
    }
  });

  it('are not made for an in-memory store, which has no file to copy to', async () => {
    const store = openStore('sqlite::memory:');
    try {
      expect(store.checkpoints).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
