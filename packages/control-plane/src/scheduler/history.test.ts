import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import type { HistoryLimits } from '../domain/history.js';
import { TERMINAL_STATES, type TaskState } from '../domain/task.js';
import { HistoryRepository } from '../store/history-repository.js';
import { firstIdAt, newId } from '../store/ids.js';
import * as historyMigration from '../store/migrations/0040-history.js';
import type { TaskRow } from '../store/schema.js';
import { backupTask, storeFixture } from '../testing/store-fixture.js';
import { taskCountsDrift } from '../testing/task-counts.js';
import { moveTaskCounts } from '../store/task-counts.js';
import { HISTORY_INTERVAL_MS, HistorySweep } from './history.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const LIMITS: HistoryLimits = { taskMs: 20 * DAY, progressMs: 3 * DAY, eventMs: 10 * DAY };
/** Small batches: a pass takes many statements and several ticks, and its walks cross gaps. */
const BATCHES = { rowsPerDelete: 7, tasksPerDelete: 4, statementsPerTick: 3 };
const log = pino({ level: 'silent' });

/** A small deterministic generator (mulberry32): the same run every time. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The history sweep against its definition, computed here from every row the test wrote: at each
 * pass (every 12 hours of the clock, one mark each), an event is forgotten once a mark at least
 * its limit old covers its id; a progress report once such a mark covers it, if its task had
 * ended by that pass (else it stays with its task); an ended task, with all its reports, once it
 * ended longer ago than its limit. Nothing else goes. The rows are made, moved and ended at
 * random over 40 days, with times an agent might have sent (far past, far future) in the events'
 * own `at`, which must not matter.
 */
describe.each(backends)('history sweep (%s)', (backend) => {
  const f = storeFixture(backend);
  let template: Omit<TaskRow, 'id'>;
  let tenantId: string;

  beforeAll(async () => {
    const providerId = (await f.provider()).id;
    tenantId = f.providerTenant;
    const made = await f.repos.tasks.create(backupTask({ tenantId, providerId }));
    const { id: _id, ...columns } = (await f.repos.tasks.get(made.id))!;
    template = columns;
    await f.store.db.deleteFrom('tasks').execute();
  });

  /** Ticks `sweep` at `now` until its pass is done; answers the ticks it took. */
  async function runPass(sweep: HistorySweep, now: number): Promise<number> {
    let ticks = 0;
    do {
      await sweep.tick(now);
      ticks++;
    } while (sweep.passing);
    return ticks;
  }

  it('forgets what its limits let go and nothing else, across passes of many ticks', async () => {
    const db = f.store.db;
    const sweep = new HistorySweep({ history: new HistoryRepository(db), limits: LIMITS, log, batches: BATCHES });
    const next = random(21);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;

    // The model: every row the test wrote and not yet forgotten by the definition.
    const tasks = new Map<string, { state: string; createdAt: number; endedAt: number | null; long: boolean }>();
    const progress = new Map<number, string>(); // id → its task
    // The events the fixture's setup wrote are older than any mark: they are covered like the rest.
    const events = new Set((await db.selectFrom('events').select('id').execute()).map((r) => Number(r.id)));
    const marks: { at: number; lastEvent: number; lastProgress: number }[] = [];
    let progressWalked = 0;
    let seq = 0;
    const seen = {
      eventsForgotten: 0,
      progressForgotten: 0,
      progressKeptWithLiveTask: 0,
      tasksForgotten: 0,
      tasksForgottenWithoutEnd: 0,
      oldTasksKeptLive: 0,
      oldTasksKeptEndedLate: 0,
      passesOfManyTicks: 0,
    };

    // Ahead of the clock of every id made before (this process's ids never go back in time): from
    // here on a task's id tells its creation time.
    let now = Date.now() + DAY;
    while (newId('tsk', now) >= firstIdAt('tsk', now + 1)) now += 10 * DAY;
    for (let step = 0; step < 80; step++) {
      now += 12 * HOUR;
      // New tasks, some at once running.
      const newTasks = [];
      for (let i = 0; i < 4; i++) {
        const id = newId('tsk', now);
        const state = next() < 0.5 ? 'queued' : 'running';
        // Some run for weeks: older than the task limit while still live.
        tasks.set(id, { state, createdAt: now, endedAt: null, long: next() < 0.15 });
        newTasks.push({ ...template, id, state, createdAt: now, endedAt: null });
      }
      await db.insertInto('tasks').values(newTasks).execute();
      // Some live tasks end (a few without an end time), some queued ones start.
      for (const [id, t] of tasks) {
        if (TERMINAL_STATES.includes(t.state as TaskState)) continue;
        const r = next() * (t.long ? 10 : 1);
        if (r < 0.25) {
          t.state = pick(TERMINAL_STATES);
          t.endedAt = next() < 0.15 ? null : now;
          await db.updateTable('tasks').set({ state: t.state, endedAt: t.endedAt }).where('id', '=', id).execute();
          // As an end through the store's writers counts it.
          await moveTaskCounts(db, [{ state: t.state, kind: template.kind }], 1);
        } else if (r < 0.4 && t.state === 'queued') {
          t.state = 'running';
          await db.updateTable('tasks').set({ state: 'running' }).where('id', '=', id).execute();
        }
      }
      // Progress reports, mostly of live tasks; events, with times an agent might send.
      const ids = [...tasks.keys()];
      for (let i = 0; i < 6 && ids.length > 0; i++) {
        const taskId = pick(ids);
        const r = await db
          .insertInto('taskProgress')
          .values({
            taskId,
            attempt: 1,
            agentId: 'agt_history',
            spoolSeq: ++seq,
            percent: 1,
            bytesDone: 0,
            bytesTotal: 0,
            message: null,
            at: pick([0, now, now + 1000 * DAY]),
          })
          .executeTakeFirstOrThrow();
        progress.set(Number(r.insertId), taskId);
      }
      for (let i = 0; i < 5; i++) {
        const r = await db
          .insertInto('events')
          .values({ tenantId, type: 'test.history', at: pick([0, now, now + 1000 * DAY]), message: `e${step}.${i}` })
          .executeTakeFirstOrThrow();
        events.add(Number(r.insertId));
      }

      // The pass, then the definition at the same now.
      const ticks = await runPass(sweep, now);
      if (ticks > 1) seen.passesOfManyTicks++;
      marks.push({ at: now, lastEvent: Math.max(0, ...events), lastProgress: Math.max(0, ...progress.keys()) });
      const markOf = (limit: number) => marks.filter((m) => m.at <= now - limit).at(-1);
      const eventsThrough = markOf(LIMITS.eventMs)?.lastEvent ?? 0;
      for (const id of events)
        if (id <= eventsThrough) {
          events.delete(id);
          seen.eventsForgotten++;
        }
      const progressThrough = markOf(LIMITS.progressMs)?.lastProgress ?? 0;
      for (const [id, taskId] of progress) {
        if (id <= progressWalked || id > progressThrough) continue;
        const t = tasks.get(taskId);
        if (t && !TERMINAL_STATES.includes(t.state as TaskState)) seen.progressKeptWithLiveTask++;
        else {
          progress.delete(id);
          seen.progressForgotten++;
        }
      }
      progressWalked = Math.max(progressWalked, progressThrough);
      for (const [id, t] of tasks) {
        const ended = TERMINAL_STATES.includes(t.state as TaskState);
        if (ended && (t.endedAt ?? t.createdAt) < now - LIMITS.taskMs) {
          tasks.delete(id);
          for (const [p, of] of progress) if (of === id) progress.delete(p);
          seen.tasksForgotten++;
          if (t.endedAt === null) seen.tasksForgottenWithoutEnd++;
        } else if (t.createdAt < now - LIMITS.taskMs) {
          if (ended) seen.oldTasksKeptEndedLate++;
          else seen.oldTasksKeptLive++;
        }
      }

      const stored = {
        tasks: (await db.selectFrom('tasks').select('id').orderBy('id').execute()).map((r) => r.id),
        progress: (await db.selectFrom('taskProgress').select('id').orderBy('id').execute()).map((r) => Number(r.id)),
        events: (await db.selectFrom('events').select('id').orderBy('id').execute()).map((r) => Number(r.id)),
      };
      expect(stored.tasks, `tasks after the pass of step ${step}`).toEqual([...tasks.keys()].sort());
      expect(stored.progress, `progress after step ${step}`).toEqual([...progress.keys()].sort((a, b) => a - b));
      expect(stored.events, `events after step ${step}`).toEqual([...events].sort((a, b) => a - b));
      // The kept counts of ended tasks went down by each task forgotten.
      expect(await taskCountsDrift(db), `kept counts after step ${step}`).toEqual([]);
    }
    // The marks no cut reads any more are gone: those of the last event limit, and one or two more.
    const kept = await db.selectFrom('historyMarks').select('at').execute();
    expect(kept.length).toBeLessThanOrEqual(LIMITS.eventMs / (12 * HOUR) + 2);
    // Every kind of case took place.
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });

  it('claims each interval once across replicas, and a pass cut short is finished by the next', async () => {
    const db = f.store.db;
    await db.deleteFrom('events').execute();
    const start = Date.now() + 100 * DAY;
    const rows = Array.from({ length: 60 }, (_, i) => ({ tenantId, type: 'test.history', at: 0, message: `r${i}` }));
    await db.insertInto('events').values(rows).execute();
    const limits = { ...LIMITS, eventMs: HOUR };
    const a = new HistorySweep({ history: new HistoryRepository(db), limits, log, batches: BATCHES });
    // Another replica's sweep: what it claims is the mark's row in the shared database.
    const b = new HistorySweep({ history: new HistoryRepository(db), limits, log, batches: BATCHES });
    // The mark that will cover every row, then a pass an interval later.
    await runPass(a, start);
    const later = start + HOUR + HISTORY_INTERVAL_MS;
    await a.tick(later); // one tick of a's pass: 3 statements, not all 60 rows
    expect(a.passing).toBe(true);
    const left = Number(
      (await db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst())!.n,
    );
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(60);
    // b finds the interval claimed; a stops (a replica gone) and b's next interval's pass finishes it.
    await b.tick(later + 1);
    expect(b.passing).toBe(false);
    await runPass(b, later + HISTORY_INTERVAL_MS);
    expect(await db.selectFrom('events').select('id').execute()).toEqual([]);
    const marks = await new HistoryRepository(db).marksAtOrBefore([later + 1]);
    expect(marks.map((m) => m.at)).toEqual([later]);
  });

  it('migration 0040 goes down and up again', async () => {
    const db = f.store.db;
    await historyMigration.down(db as never);
    await historyMigration.up(db as never);
    expect(await new HistoryRepository(db).state()).toEqual({ eventsThrough: 0, progressThrough: 0 });
  });
});
