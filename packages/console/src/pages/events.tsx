import { useEffect, useState } from 'preact/hooks';
import { withQuery } from '../api.js';
import { readStream } from '../live.js';
import { Pager, Table, useLocalPage, when } from '../ui.js';

interface EventRow {
  id: string;
  tenantId: string;
  type: string;
  at: string;
  message: string;
  instanceId?: string | null;
  jobId?: string | null;
  taskId?: string | null;
}

interface Filters {
  type: string;
  jobId: string;
  taskId: string;
  instanceId: string;
  tenantId: string;
  fromStart: boolean;
}

/** How many events the page keeps (newest first); older ones fall off. */
const KEEP = 500;
const PAGE = 25;
const NONE: Filters = { type: '', jobId: '', taskId: '', instanceId: '', tenantId: '', fromStart: false };

/**
 * The event feed: a stream of its own, filtered on the server (type, job, task, instance, and for
 * the SP tenant: the stream's own filters); live from now, or the log from its start.
 */
export function Events(props: { isSp: boolean }) {
  const [draft, setDraft] = useState<Filters>(NONE);
  const [filters, setFilters] = useState<Filters>(NONE);
  const [events, setEvents] = useState<EventRow[]>([]);
  const paged = useLocalPage(events, PAGE);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const abort = new AbortController();
    setEvents([]);
    paged.reset();
    setError(undefined);
    const query = withQuery('', {
      type: filters.type || undefined,
      jobId: filters.jobId || undefined,
      taskId: filters.taskId || undefined,
      instanceId: filters.instanceId || undefined,
      tenantId: filters.tenantId || undefined,
      after: filters.fromStart ? '0' : undefined,
    });
    void readStream(query, abort.signal, {
      open: () => setError(undefined),
      event(type, data) {
        if (type === 'task.progress') return;
        const e = data as unknown as EventRow;
        setEvents((list) => [e, ...list].slice(0, KEEP));
      },
      closed: () => setError('The feed is not live: reconnecting…'),
      unauthorized: () => setError('The token was refused.'),
      refused: setError,
    });
    return () => abort.abort();
  }, [filters]);
  const field = (name: Exclude<keyof Filters, 'fromStart'>, label: string, hint: string) => (
    <label>
      {label}
      <input
        value={draft[name]}
        placeholder={hint}
        onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value.trim() })}
      />
    </label>
  );
  const { shown } = paged;
  return (
    <>
      <h1 tabIndex={-1}>Events</h1>
      <form
        aria-label="Event filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
        }}
      >
        {field('type', 'Type starts with', 'task.')}
        {field('instanceId', 'Instance', 'ins_…')}
        {field('jobId', 'Job', 'job_…')}
        {field('taskId', 'Task', 'tsk_…')}
        {props.isSp ? field('tenantId', 'Tenant', 'ten_…') : null}
        <label>
          <input
            type="checkbox"
            checked={draft.fromStart}
            onChange={(e) => setDraft({ ...draft, fromStart: e.currentTarget.checked })}
          />{' '}
          From the start of the log
        </label>
        <button type="submit">Apply filters</button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {events.length === 0 ? <p>No event yet{filters.fromStart ? '' : ' since the feed opened'}.</p> : null}
      {shown.length > 0 ? (
        <Table
          caption={`Events, newest first (the last ${KEEP} kept)`}
          columns={['At', 'Type', 'Message', 'Instance', 'Tenant']}
        >
          {shown.map((e) => (
            <tr key={e.id} data-event={e.id}>
              <td>
                <time dateTime={e.at}>{when(e.at)}</time>
              </td>
              <td>
                <code>{e.type}</code>
              </td>
              <td>{e.message}</td>
              <td data-event-instance>{e.instanceId ?? '–'}</td>
              <td data-event-tenant>{e.tenantId}</td>
            </tr>
          ))}
        </Table>
      ) : null}
      <Pager label="Events" {...paged} />
    </>
  );
}
