import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterCommit, currentTransaction, inRequestTransaction, scopedDb, scopesOpen } from './request-scope.js';
import { transact } from './db.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';

describe.each(backends)('a request transaction (%s)', (backend) => {
  /** Every statement the store ran, in order, while `watching`. */
  const statements: string[] = [];
  let watching = false;
  // Its repositories are built on the request-scoped handle, as the control plane builds them.
  const f = storeFixture(backend, { observe: (sql) => watching && statements.push(sql.slice(0, 40)) });
  const { tenants, tasks } = f.repos;

  /** A backup task of `tenantId` with nothing behind it: these tests look only at its row. */
  const queuedBackup = (tenantId: string) => backupTask({ tenantId, providerId: 'prv_x', plugin: 'p' });
  const names = async () => (await f.store.db.selectFrom('tenants').select('name').execute()).map((r) => r.name);

  it('rolls back every write of every repository when the request does not commit', async () => {
    const woken: string[] = [];
    const committed = await inRequestTransaction(f.store.db, async () => {
      const t = await tenants.create('rolled-back');
      // A repository that opens its own transaction joins the request's instead.
      await tasks.create(queuedBackup(t.id));
      afterCommit(() => woken.push('dispatcher'));
      return false;
    });
    expect(committed).toBe(false);
    expect(await names()).not.toContain('rolled-back');
    expect(await f.store.db.selectFrom('tasks').select('id').execute()).toEqual([]);
    expect(await f.store.db.selectFrom('events').select('id').execute()).toEqual([]);
    expect(woken).toEqual([]);
  });

  it('rolls back when the request throws, and rethrows', async () => {
    await expect(
      inRequestTransaction(f.store.db, async () => {
        await tenants.create('thrown');
        throw new Error('late failure');
      }),
    ).rejects.toThrow('late failure');
    expect(await names()).not.toContain('thrown');
  });

  it('commits as one, then runs after-commit work outside the scope, where the rows are visible', async () => {
    let seenInside: boolean | undefined;
    const committed = await inRequestTransaction(f.store.db, async () => {
      await tenants.create('kept');
      afterCommit(() => {
        seenInside = currentTransaction() !== undefined;
      });
      return true;
    });
    expect(committed).toBe(true);
    expect(seenInside).toBe(false);
    expect(await names()).toContain('kept');
  });

  it('writes its events last: the event clock is held from its tick through the insert to the commit only', async () => {
    const t = await tenants.create('events-last');
    watching = true;
    try {
      await inRequestTransaction(f.store.db, async () => {
        await tasks.create(queuedBackup(t.id));
        await tenants.create('after-the-event');
        return true;
      });
    } finally {
      watching = false;
    }
    const verbs = statements.map((q) => q.replace(/[`"]/g, '').split(' ').slice(0, 2).join(' ').toLowerCase());
    const tick = verbs.indexOf('update event_clock');
    // On SQLite the request ends as a savepoint of the group it was committed with (see below).
    const end = backend === 'sqlite' ? ['release request', 'commit'] : ['commit'];
    expect(verbs.slice(tick)).toEqual(['update event_clock', 'insert into', ...end]);
    expect(statements[tick + 1]!.replace(/[`"]/g, '')).toContain('into events');
    // The task's and the second tenant's inserts came before, though the event was made between them.
    expect(verbs.slice(0, tick).filter((v) => v === 'insert into')).toHaveLength(2);
    const events = await f.store.db.selectFrom('events').select(['type']).where('tenantId', '=', t.id).execute();
    expect(events.map((e) => e.type)).toEqual(['task.queued']);
  });

  it('refuses an event made in a transaction opened any other way, which would never write it', async () => {
    const t = await tenants.create('raw-transaction');
    await expect(
      f.store.db.transaction().execute((trx) => tasks.create(queuedBackup(t.id), Date.now(), trx)),
    ).rejects.toThrow('an event was made in a transaction not opened by transact() or the request transaction');
    expect(await f.store.db.selectFrom('tasks').select('id').where('tenantId', '=', t.id).execute()).toEqual([]);
  });

  // Between request transactions the scope store is off (its async hook costs every promise):
  // a scope opened after all others ended must still follow its own work everywhere.
  it('keeps each scope across awaits, timers and statements, also one opened after every other ended', async () => {
    expect(scopesOpen()).toBe(0);
    // Begun while no scope is open, and resumed from inside one: it must not join it.
    let resume!: () => void;
    const gate = new Promise<void>((r) => (resume = r));
    const outside = (async () => {
      await gate;
      return currentTransaction();
    })();
    const request = (name: string, pause: number) =>
      inRequestTransaction(f.store.db, async () => {
        const own = currentTransaction();
        const kept: boolean[] = [];
        for (let i = 0; i < 3; i++) {
          await sleep(pause);
          kept.push(currentTransaction() === own);
          await nextTurn();
          kept.push(currentTransaction() === own);
          await tenants.create(`${name}-${i}`);
          kept.push(currentTransaction() === own);
        }
        resume();
        kept.push((await outside) === undefined, scopesOpen() >= 1, own !== undefined);
        return kept.every(Boolean);
      });
    // Two at once (on MySQL/MariaDB they overlap: the first to end must not end the other's tracking).
    expect(await Promise.all([request('scope-a', 5), request('scope-b', 1)])).toEqual([true, true]);
    expect(scopesOpen()).toBe(0);
    expect(currentTransaction()).toBeUndefined();
    // And once more after both ended, and after a request that rolled back and one that threw.
    expect(await inRequestTransaction(f.store.db, async () => false)).toBe(false);
    await expect(
      inRequestTransaction(f.store.db, async () => {
        throw new Error('thrown in scope');
      }),
    ).rejects.toThrow('thrown in scope');
    expect(scopesOpen()).toBe(0);
    let later: boolean | undefined;
    await inRequestTransaction(f.store.db, async () => {
      const own = currentTransaction();
      await sleep(1);
      await tenants.create('scope-later');
      later = own !== undefined && currentTransaction() === own;
      return true;
    });
    expect(later).toBe(true);
    expect(scopesOpen()).toBe(0);
    expect((await names()).filter((n) => n.startsWith('scope-')).sort()).toEqual([
      'scope-a-0',
      'scope-a-1',
      'scope-a-2',
      'scope-b-0',
      'scope-b-1',
      'scope-b-2',
      'scope-later',
    ]);
  });

  it('leaves code outside a request on the pool', async () => {
    expect(currentTransaction()).toBeUndefined();
    await tenants.create('outside');
    expect(await names()).toContain('outside');
  });
  // SQLite has one connection: while a request's transaction is open no other writer can move a
  // row, so only MySQL/MariaDB, whose request transactions read from a snapshot, can show this.
  it.skipIf(backend === 'sqlite')(
    'cancels a task the dispatcher took after the request first read it, instead of spinning on its snapshot',
    async () => {
      const t = await tenants.create('cancel-race');
      const task = await tasks.create(queuedBackup(t.id));
      let answer: { state: string; cancelRequested: number } | undefined;
      const cancel = inRequestTransaction(f.store.db, async () => {
        // The request's first read fixes its snapshot: the task is queued in it.
        expect((await tasks.get(task.id))?.state).toBe('queued');
        // The dispatcher, on a connection of its own, takes the task meanwhile.
        await f.store.db
          .updateTable('tasks')
          .set({ state: 'dispatched', attempt: 1, agentId: 'agt_x' })
          .where('id', '=', task.id)
          .execute();
        answer = await tasks.requestCancel(task.id);
        return true;
      });
      // A cancel that keeps retrying on what its snapshot says never answers; give it ample time.
      const spun = new Promise<'spun'>((resolve) => setTimeout(() => resolve('spun'), 10_000).unref());
      expect(await Promise.race([cancel.then(() => 'answered'), spun])).toBe('answered');
      expect(answer).toMatchObject({ state: 'dispatched', cancelRequested: 1 });
      const row = await f.store.db.selectFrom('tasks').selectAll().where('id', '=', task.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ state: 'dispatched', cancelRequested: 1 });
    },
    20_000,
  );

  // SQLite's one connection runs one transaction at a time: requests waiting for it are committed together.
  it.runIf(backend === 'sqlite')(
    'commits requests that wait at once in one commit, each still all or nothing, and answers each after that commit',
    async () => {
      const seen: string[] = [];
      const request = (name: string, end: 'commit' | 'roll back' | 'throw') =>
        inRequestTransaction(f.store.db, async () => {
          await tenants.create(name);
          afterCommit(() => seen.push(`${name} woken`));
          if (end === 'throw') throw new Error(`${name} failed`);
          return end === 'commit';
        }).then(
          (committed) => {
            seen.push(`${name} ${committed ? 'committed' : 'rolled back'}`);
            return committed;
          },
          (err: Error) => {
            seen.push(err.message);
            return 'threw';
          },
        );
      watching = true;
      statements.length = 0;
      let answers;
      try {
        answers = await Promise.all([
          request('group-1', 'commit'),
          request('group-2', 'throw'),
          request('group-3', 'commit'),
          request('group-4', 'roll back'),
          request('group-5', 'commit'),
        ]);
      } finally {
        watching = false;
      }
      expect(answers).toEqual([true, 'threw', true, false, true]);
      const verbs = statements.map((q) => q.replace(/[`"]/g, '').split(' ')[0]!.toLowerCase());
      expect(verbs.filter((v) => v === 'begin')).toHaveLength(1);
      expect(verbs.filter((v) => v === 'commit')).toHaveLength(1);
      expect(verbs.filter((v) => v === 'savepoint')).toHaveLength(5);
      expect(verbs.at(-1)).toBe('commit');
      const kept = (await names()).filter((n) => n.startsWith('group-'));
      expect(kept.sort()).toEqual(['group-1', 'group-3', 'group-5']);
      // The failed ones answered at once; the committed ones only after the one commit, each woken first.
      expect(seen).toEqual([
        'group-2 failed',
        'group-4 rolled back',
        'group-1 woken',
        'group-3 woken',
        'group-5 woken',
        'group-1 committed',
        'group-3 committed',
        'group-5 committed',
      ]);
    },
  );

  it.runIf(backend === 'sqlite')(
    'runs background work ahead of a waiting request once at most, commits it at once, one group whichever handle each was given',
    async () => {
      const settled: string[] = [];
      const track = <T>(name: string, p: Promise<T>) =>
        p.then(
          (v) => (settled.push(name), v),
          (err: unknown) => {
            settled.push(name);
            throw err;
          },
        );
      watching = true;
      statements.length = 0;
      let answers;
      try {
        answers = await Promise.allSettled([
          track(
            'request on the store',
            inRequestTransaction(f.store.db, async () => {
              await tenants.create('shared-1');
              return true;
            }),
          ),
          // Background work (a claim, a report tick), on the store's own handle and on a scoped one.
          track(
            'background on the store',
            transact(f.store.db, async (trx) => {
              // Its handle is its member's savepoint in the shared transaction, which repositories join.
              expect(trx).toBe(currentTransaction());
              await tenants.create('shared-2');
              afterCommit(() => settled.push('background woken'));
              return 'background done';
            }),
          ),
          track(
            'background on a scoped handle',
            transact(scopedDb(f.store.db), async () => {
              await tenants.create('shared-3');
              throw new Error('background failed');
            }),
          ),
          track(
            'request on a scoped handle',
            inRequestTransaction(scopedDb(f.store.db), async () => {
              await tenants.create('shared-4');
              return true;
            }),
          ),
        ]);
      } finally {
        watching = false;
      }
      expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message))).toEqual([
        true,
        'background done',
        'background failed',
        true,
      ]);
      // The first background work went ahead of the first request and was committed as soon as it
      // ran; the second came after that request (no background work goes ahead of one twice) and
      // ahead of the last request.
      const verbs = statements.map((q) => q.replace(/[`"]/g, '').split(' ')[0]!.toLowerCase());
      expect(verbs.filter((v) => v === 'begin')).toHaveLength(3);
      expect(verbs.filter((v) => v === 'commit')).toHaveLength(3);
      expect(verbs.filter((v) => v === 'savepoint')).toHaveLength(4);
      expect(settled).toEqual([
        'background woken',
        'background on the store',
        'background on a scoped handle',
        'request on the store',
        'request on a scoped handle',
      ]);
      expect((await names()).filter((n) => n.startsWith('shared-')).sort()).toEqual([
        'shared-1',
        'shared-2',
        'shared-4',
      ]);
    },
  );

  it.runIf(backend === 'sqlite')(
    'fails every member of a group whose shared commit fails, runs none of their after-commit work, and keeps nothing they wrote',
    async () => {
      // A commit that fails: a deferred foreign key, checked only when the outermost transaction commits.
      await sql`create table commit_parents (id text primary key)`.execute(f.store.db);
      await sql`create table commit_children (id text primary key, parent_id text references commit_parents(id) deferrable initially deferred)`.execute(
        f.store.db,
      );
      await sql`pragma foreign_keys = on`.execute(f.store.db);
      const woken: string[] = [];
      try {
        const member = (name: string, orphan: boolean) =>
          inRequestTransaction(f.store.db, async () => {
            await tenants.create(name);
            if (orphan)
              await sql`insert into commit_children (id, parent_id) values (${name}, 'nobody')`.execute(
                currentTransaction()!,
              );
            afterCommit(() => woken.push(name));
            return true;
          });
        const answers = await Promise.allSettled([
          member('doomed-1', false),
          member('doomed-2', true),
          member('doomed-3', false),
        ]);
        expect(answers.map((a) => (a.status === 'rejected' ? String(a.reason) : a.value))).toEqual([
          expect.stringMatching(/FOREIGN KEY constraint failed/),
          expect.stringMatching(/FOREIGN KEY constraint failed/),
          expect.stringMatching(/FOREIGN KEY constraint failed/),
        ]);
        expect(woken).toEqual([]);
        expect((await names()).filter((n) => n.startsWith('doomed-'))).toEqual([]);
        expect(
          (await sql<{ n: number }>`select count(*) as n from commit_children`.execute(f.store.db)).rows[0]!.n,
        ).toBe(0);
      } finally {
        await sql`pragma foreign_keys = off`.execute(f.store.db);
      }
      // The connection is left usable: the next group commits.
      expect(
        await inRequestTransaction(f.store.db, async () => {
          await tenants.create('after-doomed');
          return true;
        }),
      ).toBe(true);
      expect(await names()).toContain('after-doomed');
    },
  );

  it.runIf(backend === 'sqlite')(
    'fails only the request whose after-commit work throws, and answers the others of its group',
    async () => {
      const request = (name: string, wake: () => void) =>
        inRequestTransaction(f.store.db, async () => {
          await tenants.create(name);
          afterCommit(wake);
          return true;
        });
      const woken: string[] = [];
      const answers = await Promise.allSettled([
        request('wake-1', () => woken.push('wake-1')),
        request('wake-2', () => {
          throw new Error('wake-up failed');
        }),
        request('wake-3', () => woken.push('wake-3')),
      ]);
      expect(answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message))).toEqual([
        true,
        'wake-up failed',
        true,
      ]);
      expect(woken).toEqual(['wake-1', 'wake-3']);
      // All three were committed: the failure came after the commit, as with a commit of its own.
      expect((await names()).filter((n) => n.startsWith('wake-')).sort()).toEqual(['wake-1', 'wake-2', 'wake-3']);
    },
  );
});
