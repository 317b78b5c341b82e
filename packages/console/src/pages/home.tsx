import { readPages } from '../api.js';
import { duration, nextRuns, outcomes, protection, type ProtectionFigures, type ScheduledJob } from '../format.js';
import { recent } from '../live.js';
import { ErrorNote, Link, Pager, TaskTable, useLocalPage, usePaged, useRead, when, type Task } from '../ui.js';

const DAY_MS = 24 * 3600 * 1000;
/** How many tasks the 24-hour count reads at most (newest first), so that a busy day stays one quick look. */
const OUTCOME_PAGES = 4;
const OUTCOME_PAGE = 500;

/** The last 24 hours' tasks by outcome, read newest first until the day is covered. */
function useOutcomes() {
  return useRead(async () => {
    const since = Date.now() - DAY_MS;
    const { items, partial } = await readPages<Task>('/v1/tasks', {
      limit: OUTCOME_PAGE,
      maxPages: OUTCOME_PAGES,
      enough: (tasks) => Date.parse(tasks[tasks.length - 1]?.createdAt ?? '') < since,
    });
    return { counts: outcomes(items, since), partial };
  });
}

/** How many usage pages (tenants, 500 a page) Home adds up at most: the SP's view of a large service stays one quick look. */
const USAGE_PAGES = 4;
/** How many job pages (100 a page) the timeline reads at most. */
const JOB_PAGES = 5;
const TIMELINE_PAGE = 10;

/** Instances protected (with an offering), unprotected, and in breach of their RPO, over the tenants the token sees. */
function Protection() {
  const p = useRead(async () => {
    const { items, partial } = await readPages<ProtectionFigures>('/v1/usage', { limit: 500, maxPages: USAGE_PAGES });
    return { sum: protection(items), partial };
  });
  const figures: [keyof ProtectionFigures, string][] = [
    ['protectedInstances', 'protected'],
    ['unprotectedInstances', 'unprotected'],
    ['rpoBreachedInstances', 'RPO breached'],
  ];
  return (
    <section aria-labelledby="protection-h">
      <h2 id="protection-h">Protection</h2>
      <ErrorNote error={p.error} />
      {p.data ? (
        <dl class="outcomes">
          {figures.map(([key, label]) => (
            <div key={key} class={`protection-${key}`}>
              <dt>{label}</dt>
              <dd data-protection={key}>{p.data?.sum[key]}</dd>
            </div>
          ))}
        </dl>
      ) : null}
      {p.data?.partial ? <p>Counted over the first {USAGE_PAGES * 500} tenants only.</p> : null}
    </section>
  );
}

/** The next run of each backup job schedule, soonest first, paged. */
function Timeline() {
  const t = useRead(async () => {
    const { items, partial } = await readPages<ScheduledJob>('/v1/backup-jobs', { limit: 100, maxPages: JOB_PAGES });
    return { runs: nextRuns(items), partial };
  });
  const runs = t.data?.runs ?? [];
  const paged = useLocalPage(runs, TIMELINE_PAGE);
  const shown = paged.shown;
  return (
    <section aria-labelledby="next-h">
      <h2 id="next-h">Next runs</h2>
      <ErrorNote error={t.error} />
      {t.data && runs.length === 0 ? <p>No backup job schedule is due to run.</p> : null}
      {shown.length > 0 ? (
        <ol class="timeline">
          {shown.map((r) => (
            <li key={r.scheduleId} data-next-run={r.jobId}>
              <time dateTime={r.at}>{when(r.at)}</time> <Link to={`/jobs/${r.jobId}`}>{r.jobName}</Link>{' '}
              <span class="cron">
                (<code>{r.cron}</code> {r.timezone}, in {duration((Date.parse(r.at) - Date.now()) / 1000)})
              </span>
            </li>
          ))}
        </ol>
      ) : null}
      <Pager label="Next runs" {...paged} />
      {t.data?.partial ? <p>Read over the first {JOB_PAGES * 100} backup jobs only.</p> : null}
    </section>
  );
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
        {day.data ? (
          <dl class="outcomes">
            {['succeeded', 'failed', 'cancelled', 'lost'].map((s) => (
              <div key={s} class={`state-${s}`}>
                <dt>{s}</dt>
                <dd data-outcome={s}>{day.data?.counts[s] ?? 0}</dd>
              </div>
            ))}
          </dl>
        ) : null}
        {day.data?.partial ? <p>Counted over the newest {OUTCOME_PAGES * OUTCOME_PAGE} tasks only.</p> : null}
      </section>
      <Protection />
      <Timeline />
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
