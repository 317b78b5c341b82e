import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../testing/wait.js';
import { TaskJournal } from './journal.js';

const clock = { now: () => 1_800_000_000_000 };

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe('task journal', () => {
  it('remembers the latest attempt of each task across a re-open', async () => {
    const journal = TaskJournal.open(dir, { clock });
    journal.record({ taskId: 'tsk_a', attempt: 1, operation: 'backup', plugin: 'p', state: 'running', startedAt: 1 });
    journal.record({
      taskId: 'weird/../id',
      attempt: 2,
      operation: 'restore',
      plugin: 'p',
      state: 'running',
      startedAt: 1,
    });
    journal.finish('tsk_a', 1, 5);
    await journal.durable();
    const reopened = TaskJournal.open(dir, { clock });
    expect(reopened.get('tsk_a')).toMatchObject({ attempt: 1, state: 'finished', endedAt: 5 });
    expect(reopened.get('weird/../id')).toMatchObject({ attempt: 2, state: 'running' });
    expect(reopened.running().map((e) => e.taskId)).toEqual(['weird/../id']);
  });

  it('does not let a superseded attempt that ends late overwrite its successor', () => {
    const journal = TaskJournal.open(dir, { clock });
    journal.record({ taskId: 't', attempt: 1, operation: 'backup', plugin: 'p', state: 'running', startedAt: 1 });
    journal.record({ taskId: 't', attempt: 2, operation: 'backup', plugin: 'p', state: 'running', startedAt: 2 });
    journal.finish('t', 1, 3);
    expect(journal.get('t')).toMatchObject({ attempt: 2, state: 'running' });
  });

  it('prunes finished entries older than the retention, never running ones', async () => {
    const journal = TaskJournal.open(dir, { clock });
    const day = 24 * 3600_000;
    journal.record({
      taskId: 'old',
      attempt: 1,
      operation: 'backup',
      plugin: 'p',
      state: 'finished',
      startedAt: 0,
      endedAt: 1,
    });
    journal.record({
      taskId: 'recent',
      attempt: 1,
      operation: 'backup',
      plugin: 'p',
      state: 'finished',
      startedAt: 0,
      endedAt: day,
    });
    journal.record({ taskId: 'running', attempt: 1, operation: 'backup', plugin: 'p', state: 'running', startedAt: 0 });
    expect(journal.prune(day, day + 10)).toBe(1);
    await journal.durable();
    expect(
      TaskJournal.open(dir, { clock })
        .all()
        .map((e) => e.taskId)
        .sort(),
    ).toEqual(['recent', 'running']);
  });
});
