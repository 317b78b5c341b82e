import { readPages } from '../api.js';
import { duration, outcomes, protection, type ProtectionFigures } from '../format.js';
import { recent } from '../live.js';
import { ErrorNote, Link, Pager, TaskTable, usePaged, useRead, when, type Task } from '../ui.js';

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

/** A next run as `GET /v1/schedules` lists it. */
interface NextRun {
  kind: 'instance' | 'offering' | 'job';
  id: string;
  name: string;
  nextRunAt: string;
  cron: string;
  timezone: string;
  jobId: string | null;
}

/** What runs: a link to the job or instance; an offering's SLA (no page of its own) by name. */
function RunOf(props: { run: NextRun }) {
  const r = props.run;
  if (r.kind === 'job') return <Link to={`/jobs/${r.jobId}`}>{r.name}</Link>;
  if (r.kind === 'instance')
    return (
      <>
        <Link to={`/instances/${r.id}`}>{r.name}</Link> (its own schedule)
      </>
    );
  return <>every instance of the offering {r.name} (its SLA)</>;
}

/** How often the timeline reads again, besides on each event: its "in …" stays true. */
const TIMELINE_REFRESH_MS = 15_000;

/** The next run of every schedule (jobs', instances' own, offerings' SLAs), soonest first, paged by the API. */
function Timeline() {
  const runs = usePaged<NextRun>('/v1/schedules', {}, TIMELINE_PAGE, TIMELINE_REFRESH_MS);
  return (
    <section aria-labelledby="next-h">
      <h2 id="next-h">Next runs</h2>
      <ErrorNote error={runs.error} />
      {runs.items && runs.items.length === 0 ? <p>No schedule is due to run.</p> : null}
      {runs.items && runs.items.length > 0 ? (
        <ol class="timeline">
          {runs.items.map((r) => (
            <li key={`${r.kind}-${r.id}`} data-next-run={r.jobId ?? r.id} data-next-kind={r.kind}>
              <time dateTime={r.nextRunAt}>{when(r.nextRunAt)}</time> <RunOf run={r} />{' '}
              <span class="cron">
                (<code>{r.cron}</code> {r.timezone}, in {duration((Date.parse(r.nextRunAt) - Date.now()) / 1000)})
              </span>
            </li>
          ))}
        </ol>
      ) : null}
      <Pager label="Next runs" {...runs} />
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
