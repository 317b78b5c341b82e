import { describe, expect, it } from 'vitest';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import { Metrics, STORE_FIGURES_REFRESH_MS, statementVerb } from './metrics.js';

describe('statementVerb', () => {
  it.each([
    ['select * from "tasks" where "id" = ?', 'select'],
    ['  INSERT into "events" values (?)', 'insert'],
    ['update "tasks" set "state" = ?', 'update'],
    ['delete from "task_progress"', 'delete'],
    ['begin', 'begin'],
    ['commit', 'commit'],
    ['rollback', 'rollback'],
    ['with ranked as (select 1) select * from ranked', 'other'],
    ['SET SESSION sql_mode = ?', 'other'],
    ['', 'other'],
  ])('%j is %s', (sql, verb) => expect(statementVerb(sql)).toBe(verb));
});

describe('store statements', () => {
  it('counts statements and their time by verb', async () => {
    const m = new Metrics({
      taskCounts: async () => [],
      localSessions: () => 0,
      heartbeatMs: () => 0,
      idleHeartbeatMs: () => 0,
      eventStreams: () => 0,
      waitingRequests: () => 0,
      oldestLastBackup: async () => null,
      rpoBreached: async () => 0,
    });
    m.storeStatement('select 1', 2);
    m.storeStatement('select 2', 3);
    m.storeStatement('commit', 0.5);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^cairn_store_statements_total\{verb="select"\} 2$/m);
    expect(text).toMatch(/^cairn_store_statements_total\{verb="commit"\} 1$/m);
    expect(text).toMatch(/^cairn_store_statement_seconds_total\{verb="select"\} 0\.005$/m);
  });
});

/*
 * The store's figures (the tasks per state and kind, the oldest of the instances' newest restore
 * points, the breaches) are read from the store, and /metrics needs no token: they are
 * read at most once per refresh interval, whatever the number of scrapes. Read from a real store,
 * its statements counted.
 */
describe("the store's figures in /metrics", () => {
  let counting = false;
  let statements = 0;
  const f = storeFixture('sqlite', { observe: () => void (counting && statements++) });
  let now = 0;
  let failNext = false;
  const metrics = (storeRefreshMs?: number) =>
    new Metrics(
      {
        taskCounts: async () => {
          if (failNext) {
            failNext = false;
            throw new Error('store away');
          }
          return f.repos.tasks.countsByStateAndKind();
        },
        localSessions: () => 0,
        heartbeatMs: () => 0,
        idleHeartbeatMs: () => 0,
        eventStreams: () => 0,
        waitingRequests: () => 0,
        oldestLastBackup: () => f.repos.rpo.oldestLastBackup(),
        rpoBreached: () => f.repos.rpo.breached(),
      },
      { elapsed: () => now, ...(storeRefreshMs !== undefined ? { storeRefreshMs } : {}) },
    );
  /** The statements of one read of the figures: the tasks (ended ones kept, the others counted), the oldest backup, the breaches. */
  const READ = { tasks: 2, all: 4 };
  const queued = (text: string) => Number(/^cairn_tasks\{state="queued",kind="backup"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  const scrape = async (m: Metrics, times: number) => {
    counting = true;
    statements = 0;
    const texts = await Promise.all(Array.from({ length: times }, () => m.registry.metrics()));
    for (let i = 0; i < times; i++) texts.push(await m.registry.metrics());
    counting = false;
    return { statements, text: texts.at(-1)! };
  };

  it('reads them once per refresh interval, however many scrape, and a failed read is not kept', async () => {
    const providerId = (await f.provider()).id;
    const m = metrics();
    now = 1_000;
    const first = await scrape(m, 20);
    expect(first.statements, 'one read of the three figures for 40 scrapes').toBe(READ.all);
    await f.repos.tasks.create(backupTask({ tenantId: f.providerTenant, providerId }));
    now += STORE_FIGURES_REFRESH_MS - 1;
    const within = await scrape(m, 5);
    expect(within.statements).toBe(0);
    expect(queued(within.text), 'the last read, until the interval has passed').toBe(queued(first.text));
    now += 1;
    const after = await scrape(m, 5);
    expect(after.statements).toBe(READ.all);
    expect(queued(after.text)).toBe(queued(first.text) + 1);
    // A read that fails fails its scrape, and the next scrape reads it again (the other two, read
    // by the failed scrape, are kept).
    now += STORE_FIGURES_REFRESH_MS;
    failNext = true;
    await expect(m.registry.metrics()).rejects.toThrow('store away');
    expect((await scrape(m, 1)).statements).toBe(READ.tasks);
  });

  it('reads them at every scrape with a refresh of 0 (scrapes at the same time share a read)', async () => {
    const m = metrics(0);
    counting = true;
    statements = 0;
    for (let i = 0; i < 4; i++) await m.registry.metrics();
    counting = false;
    expect(statements).toBe(4 * READ.all);
  });
});
