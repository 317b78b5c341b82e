import { useEffect, useState } from 'preact/hooks';
import { api, withQuery, type Page } from '../api.js';
import { outcomes } from '../format.js';
import { changes, recent } from '../live.js';
import { ErrorNote, Pager, TaskTable, usePaged, when, type Task } from '../ui.js';

const DAY_MS = 24 * 3600 * 1000;
/** How many tasks the 24-hour count reads at most (newest first), so that a busy day stays one quick look. */
const OUTCOME_PAGES = 4;
const OUTCOME_PAGE = 500;

/** The last 24 hours' tasks by outcome, read newest first until the day is covered. */
function useOutcomes() {
  const [counts, setCounts] = useState<{ counts: Record<string, number>; partial: boolean }>();
  const [error, setError] = useState<unknown>();
  const tick = changes.value;
  useEffect(() => {
    let live = true;
    const since = Date.now() - DAY_MS;
    (async () => {
      const tasks: Task[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < OUTCOME_PAGES; i++) {
        const p = await api<Page<Task>>('GET', withQuery('/v1/tasks', { limit: String(OUTCOME_PAGE), cursor }));
        tasks.push(...p.items);
        const last = p.items[p.items.length - 1];
        if (!p.nextCursor || !last || Date.parse(last.createdAt) < since) return { tasks, partial: false };
        cursor = p.nextCursor;
      }
      return { tasks, partial: true };
    })().then(
      ({ tasks, partial }) => live && setCounts({ counts: outcomes(tasks, since), partial }),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [tick]);
  return { counts, error };
}

export function Home() {
  const running = usePaged<Task>('/v1/tasks', { state: 'running' });
  const queued = usePaged<Task>('/v1/tasks', { state: 'queued' }, 10);
  const day = useOutcomes();
  return (
    <>
      <h1 tabIndex={-1}>Home</h1>
      <section aria-labelledby="running-h">
        <h2 id="running-h">Running tasks</h2>
        <ErrorNote error={running.error} />
        {running.items && running.items.length === 0 ? <p>No task is running.</p> : null}
        {running.items && running.items.length > 0 ? (
          <TaskTable tasks={running.items} caption="Tasks running now, with live progress" />
        ) : null}
        <Pager label="Running tasks" {...running} />
        {queued.items && queued.items.length > 0 ? (
          <>
            <TaskTable tasks={queued.items} caption="Tasks waiting for a slot" />
            <Pager label="Queued tasks" {...queued} />
          </>
        ) : null}
      </section>
      <section aria-labelledby="day-h">
        <h2 id="day-h">Last 24 hours</h2>
        <ErrorNote error={day.error} />
        {day.counts ? (
          <dl class="outcomes">
            {['succeeded', 'failed', 'cancelled', 'lost'].map((s) => (
              <div key={s} class={`state-${s}`}>
                <dt>{s}</dt>
                <dd data-outcome={s}>{day.counts?.counts[s] ?? 0}</dd>
              </div>
            ))}
          </dl>
        ) : null}
        {day.counts?.partial ? <p>Counted over the newest {OUTCOME_PAGES * OUTCOME_PAGE} tasks only.</p> : null}
      </section>
      <section aria-labelledby="feed-h">
        <h2 id="feed-h">Latest events</h2>
        {recent.value.length === 0 ? <p>No event since this page opened.</p> : null}
        <ul class="feed">
          {recent.value.map((e) => (
            <li key={e.id}>
              <time dateTime={e.at}>{when(e.at)}</time> <code>{e.type}</code> {e.message}
            </li>
          ))}
        </ul>
      </section>
    </>
  );
}
