import { AsyncLocalStorage } from 'node:async_hooks';
import { setImmediate } from 'node:timers/promises';
import type { ControlledTransaction, Transaction } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';
import { holdsEvents, writeHeldEvents } from './event-log.js';
import { isMysql } from './dialect.js';

interface Scope {
  trx: Transaction<Database>;
  /** Set once the transaction committed or rolled back: late work falls back to the root handle. */
  done: boolean;
  afterCommit: (() => void)[];
}

const scopes = new AsyncLocalStorage<Scope>();

/**
 * Scopes opened and not done yet. While none is, the scope store is disabled: on Node 20 and 22
 * an enabled AsyncLocalStorage runs an async hook on every promise the process makes (about 8 %
 * of a GET's CPU samples; 12 % more GETs a second without it), and outside every request
 * transaction there is nothing for it to carry: a done scope answers as no scope does (the root
 * handle). The next scope enables it again (`run` does). A continuation begun while it was
 * disabled carries no scope, which is right: no scope was open when it began.
 */
let openScopes = 0;

function opened(trx: Transaction<Database>): Scope {
  openScopes++;
  return { trx, done: false, afterCommit: [] };
}

/** Marks `scope` done (late work of it goes to the root handle); once none is open, stops tracking. */
function closed(scope: Scope): void {
  if (scope.done) return;
  scope.done = true;
  if (--openScopes === 0) scopes.disable();
}

/** Request scopes open now (a test's view of {@link closed}'s bookkeeping). */
export function scopesOpen(): number {
  return openScopes;
}

/** What a {@link scopedDb} handle answers with the handle it was made from. */
const ROOT = Symbol('root');

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
      if (prop === ROOT) return target;
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

/** Request transactions one SQLite commit may carry (the rest wait for the next). */
const GROUP_MAX = 32;

/**
 * Runs `work` in one transaction that every repository call within it joins. `work` returns
 * whether to commit; on false (or a throw) everything it wrote is rolled back. Callbacks given to
 * `afterCommit` meanwhile run once the commit is durable, outside the scope.
 *
 * On SQLite, request transactions that wait for the one connection at the same time are committed
 * together (see {@link GroupCommit}); on MySQL/MariaDB each is its own transaction on the pool.
 */
export async function inRequestTransaction(root: Db, work: () => Promise<boolean>): Promise<boolean> {
  if (!isMysql(root)) return groupOf(root).run(work);
  let scope: Scope | undefined;
  try {
    await root.transaction().execute(async (trx) => {
      holdsEvents(trx);
      scope = opened(trx);
      const commit = await scopes.run(scope, work);
      if (!commit) throw new Rollback();
      // Last, so the event clock's row stays locked only from here to the commit.
      await writeHeldEvents(trx);
    });
  } catch (err) {
    if (scope) closed(scope);
    if (err instanceof Rollback) return false;
    throw err;
  }
  closed(scope!);
  for (const fn of scope!.afterCommit) fn();
  return true;
}

const groups = new WeakMap<Db, GroupCommit>();

/**
 * The group commit of a SQLite store: one per database handle, whichever {@link scopedDb} handles
 * were made from it, so the API's requests and the background work (claims, report ticks, the
 * scheduler) share its commits.
 */
function groupOf(db: Db): GroupCommit {
  const root = (db as Db & { [ROOT]?: Db })[ROOT] ?? db;
  let group = groups.get(root);
  if (!group) groups.set(root, (group = new GroupCommit(root)));
  return group;
}

/**
 * SQLite: runs `work` as one member of its store's group commit (see {@link GroupCommit}), on the
 * member's own savepoint; resolves with its result once the group committed. A throw rolls back
 * this member alone and rejects with it.
 */
export async function inGroupTransaction<T>(root: Db, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  let result!: T;
  await groupOf(root).run(async () => {
    result = await work(currentTransaction()!);
    return true;
  }, true);
  return result;
}

interface Unit {
  work: () => Promise<boolean>;
  resolve: (committed: boolean) => void;
  reject: (err: unknown) => void;
  /** Background work another waits on (see {@link GroupCommit}): run first, committed at once. */
  soon: boolean;
  /** A request that background work went ahead of once already: none goes ahead of it again. */
  passed: boolean;
}

/**
 * Group commit of request transactions on SQLite. Its one connection runs one transaction at a
 * time, and a commit costs more than a short request's statements (the WAL pages of every row
 * and index it touched). Request transactions that arrive while one runs wait, as they would for
 * the connection; when it ends, the next runs in the same transaction under a savepoint, and
 * after the last the group waits one turn of the event loop for more (requests whose bodies
 * were read meanwhile), up to {@link GROUP_MAX}; one commit ends them all. Each request is still
 * all or nothing: one that rolls back or throws is rolled back to its savepoint alone, and the
 * others go on. Each learns it committed (and its after-commit work runs) only once the shared
 * commit is done, so no answer or wake-up ever shows a row that a failed commit took back; if
 * the commit fails, every request of the group fails with its error and none of them wrote
 * anything.
 *
 * Background work (a dispatch round's claim, a report tick) is run `soon`: before the requests
 * waiting, and the group commits as soon as the background work waiting has run. The dispatcher
 * waits for its claim's commit before it sends, and the next round for that one; behind a group
 * of 32 requests each round would wait for all of them. Background work goes ahead of a request
 * once at most, so a storm of it (10,000 agents reconnecting, each hello a transaction) delays a
 * tenant's request by one wave, never for the storm's length.
 */
class GroupCommit {
  private readonly waiting: Unit[] = [];
  private running = false;

  constructor(private readonly root: Db) {}

  run(work: () => Promise<boolean>, soon = false): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const unit: Unit = { work, resolve, reject, soon, passed: false };
      // Background work: ahead of the requests no background work went ahead of yet (the last
      // ones waiting, which it marks), after everything else.
      let at = this.waiting.length;
      if (soon) while (at > 0 && !this.waiting[at - 1]!.soon && !this.waiting[at - 1]!.passed) at--;
      for (let i = at; i < this.waiting.length; i++) this.waiting[i]!.passed = true;
      this.waiting.splice(at, 0, unit);
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) await this.commitGroup();
    } finally {
      this.running = false;
    }
  }

  private async commitGroup(): Promise<void> {
    const kept: { unit: Unit; scope: Scope }[] = [];
    let trx: ControlledTransaction<Database>;
    try {
      trx = await this.root.startTransaction().execute();
    } catch (err) {
      this.waiting.shift()!.reject(err);
      return;
    }
    let current: Unit | undefined;
    try {
      for (let ran = 0; ran < GROUP_MAX; ran++) {
        // A request runs to its end without yielding to I/O, so the others arrive while the
        // group waits one turn of the event loop; a turn that brings none ends the group.
        if (this.waiting.length === 0) await setImmediate();
        if (this.waiting.length === 0) break;
        const unit = (current = this.waiting.shift()!);
        const request = await trx.savepoint('request').execute();
        holdsEvents(request);
        const scope = opened(request);
        let commit = false;
        let failure: { err: unknown } | undefined;
        try {
          commit = await scopes.run(scope, unit.work);
          if (commit) await writeHeldEvents(request);
        } catch (err) {
          failure = { err };
        }
        // Late work of this request goes to the pool (it waits there for the shared commit).
        closed(scope);
        if (commit && !failure) {
          await request.releaseSavepoint('request').execute();
          kept.push({ unit, scope });
        } else {
          await request.rollbackToSavepoint('request').execute();
          await request.releaseSavepoint('request').execute();
          if (failure) unit.reject(failure.err);
          else unit.resolve(false);
        }
        current = undefined;
        // The background work waiting has run: commit it now rather than behind requests.
        if (unit.soon && this.waiting[0]?.soon !== true) break;
      }
      await trx.commit().execute();
    } catch (err) {
      await trx
        .rollback()
        .execute()
        .catch(() => undefined);
      current?.reject(err);
      for (const { unit } of kept) unit.reject(err);
      return;
    }
    // Committed: each request's after-commit work, then its answer. Work that throws fails its
    // own request (as it would after a commit of its own), never the others'.
    for (const { unit, scope } of kept) {
      try {
        for (const fn of scope.afterCommit) fn();
        unit.resolve(true);
      } catch (err) {
        unit.reject(err);
      }
    }
  }
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
