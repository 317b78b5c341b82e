import { describe, expect, it } from 'vitest';
import { Metrics, statementVerb } from './metrics.js';

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
