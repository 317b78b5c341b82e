import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';
import { holdsEvents, writeHeldEvents } from './event-log.js';

interface Scope {
  trx: Transaction<Database>;
  /** Set once the transaction committed or rolled back: late work falls back to the root handle. */
  done: boolean;
  afterCommit: (() => void)[];
}

const scopes = new AsyncLocalStorage<Scope>();

/** Thrown inside a request transaction to roll it back without an error of its own. */
class Rollback extends Error {
  override readonly name = 'Rollback';
}

/**
 * A database handle that, inside `inRequestTransaction`, is that transaction, and the pool
 * everywhere else. Repositories are built on it once, so a mutating request's every write, through
 * whichever repositories, commits or rolls back as one.
 */
export function scopedDb(root: Db): Db {
  return new Proxy(root, {
    get(target, prop) {
      const scope = scopes.getStore();
      const db: Db = scope && !scope.done ? scope.trx : target;
      const value: unknown = Reflect.get(db, prop, db);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(db) : value;
    },
  });
}

/** The open request transaction, if this code runs inside one. */
export function currentTransaction(): Transaction<Database> | undefined {
  const scope = scopes.getStore();
  return scope && !scope.done ? scope.trx : undefined;
}

/**
 * Runs `work` in one transaction that every repository call within it joins. `work` returns
 * whether to commit; on false (or a throw) everything it wrote is rolled back. Callbacks given to
 * `afterCommit` meanwhile run once the commit is durable, outside the scope.
 */
export async function inRequestTransaction(root: Db, work: () => Promise<boolean>): Promise<boolean> {
  let scope: Scope | undefined;
  try {
    await root.transaction().execute(async (trx) => {
      holdsEvents(trx);
      scope = { trx, done: false, afterCommit: [] };
      const commit = await scopes.run(scope, work);
      if (!commit) throw new Rollback();
      // Last, so the event clock's row stays locked only from here to the commit.
      await writeHeldEvents(trx);
    });
  } catch (err) {
    if (scope) scope.done = true;
    if (err instanceof Rollback) return false;
    throw err;
  }
  scope!.done = true;
  for (const fn of scope!.afterCommit) fn();
  return true;
}

/**
 * Runs `fn` once what the current request wrote is committed (at once outside a request). Use it
 * for wake-ups of background work, which must neither see uncommitted rows nor run inside the
 * request's transaction.
 */
export function afterCommit(fn: () => void): void {
  const scope = scopes.getStore();
  if (scope && !scope.done) scope.afterCommit.push(() => scopes.exit(fn));
  else scopes.exit(fn);
}

/** Runs `fn` outside any request scope (for background loops started from a request). */
export function outsideRequest<T>(fn: () => T): T {
  return scopes.exit(fn);
}
