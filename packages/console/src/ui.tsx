import { useCallback, useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { ReadonlySignal } from '@preact/signals';
import { api, ApiError, withQuery, type Page } from './api.js';
import { bytes, duration, rate } from './format.js';
import { changes, progress } from './live.js';
import { BASE, navigate } from './router.js';

/** A link to a client route: a real href (open in a new tab works), followed without a reload. */
export function Link(props: { to: string; children: ComponentChildren }) {
  return (
    <a
      href={BASE + props.to}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

/** What went wrong, as the API said it (its problem detail), announced to screen readers. */
export function ErrorNote(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  const text = e instanceof ApiError ? `${e.message} (${e.status} ${e.code})` : String(e);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/**
 * One page of a list at a time, with the API's cursors: `next` follows `nextCursor`, `prev` goes
 * back the way it came. Reloads the page it is on whenever the event stream reports a change.
 */
export function usePaged<T>(
  path: string,
  query: Record<string, string | undefined> = {},
  limit = 20,
  /** Also reload every so many ms (a list of times to come, whose "in …" ages). */
  refreshMs?: number,
) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<Page<T> | undefined>();
  const [error, setError] = useState<unknown>();
  const [beat, setBeat] = useState(0);
  useEffect(() => {
    if (refreshMs === undefined) return;
    const t = setInterval(() => setBeat((b) => b + 1), refreshMs);
    return () => clearInterval(t);
  }, [refreshMs]);
  const cursor = cursors[cursors.length - 1];
  const key = withQuery(path, { ...query, limit: String(limit), cursor });
  const tick = changes.value;
  useEffect(() => {
    let live = true;
    api<Page<T>>('GET', key).then(
      (p) => {
        if (!live) return;
        setPage(p);
        setError(undefined);
      },
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [key, tick, beat]);
  const next = useCallback(() => {
    if (page?.nextCursor) setCursors((c) => [...c, page.nextCursor ?? undefined]);
  }, [page]);
  const prev = useCallback(() => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)), []);
  return { items: page?.items, error, hasNext: Boolean(page?.nextCursor), hasPrev: cursors.length > 1, next, prev };
}

/**
 * A list held in the page (not paged by the API), shown `size` at a time: the items of the page
 * it is on and the Pager's props. `reset` puts it back on the first page.
 */
export function useLocalPage<T>(items: readonly T[], size: number) {
  const [page, setPage] = useState(0);
  return {
    shown: items.slice(page * size, (page + 1) * size),
    hasPrev: page > 0,
    hasNext: (page + 1) * size < items.length,
    prev: () => setPage((p) => Math.max(0, p - 1)),
    next: () => setPage((p) => p + 1),
    reset: () => setPage(0),
  };
}

/** Previous / next buttons of a paged list, labelled for what they page. */
export function Pager(props: {
  label: string;
  hasPrev: boolean;
  hasNext: boolean;
  prev: () => void;
  next: () => void;
}) {
  if (!props.hasPrev && !props.hasNext) return null;
  return (
    <nav class="pager" aria-label={`${props.label} pages`}>
      <button type="button" onClick={props.prev} disabled={!props.hasPrev}>
        Previous page
      </button>
      <button type="button" onClick={props.next} disabled={!props.hasNext}>
        Next page
      </button>
    </nav>
  );
}

/** A task as GET /v1/tasks shows it (the fields the console reads). */
export interface Task {
  id: string;
  kind: string;
  state: string;
  instanceId: string | null;
  backupId: string | null;
  progress: { percent: number; bytesDone: number; bytesTotal: number; etaSeconds: number | null };
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];

/** A progress bar with its figures: percent, bytes done of total, rate, ETA. */
export function Bar(props: {
  label: string;
  /** The task it shows (`data-task` on the bar). */
  taskId: string;
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  rate: number | undefined;
  /** Seconds left, or null when unknown; undefined once it ended (shown as –). */
  etaSeconds: number | null | undefined;
}) {
  const percent = Math.round(props.percent);
  return (
    <div class="bar">
      <progress max={100} value={percent} aria-label={props.label} data-task={props.taskId}>
        {percent} %
      </progress>
      <span class="figures">
        <span data-percent>{percent} %</span> · {bytes(props.bytesDone)} of {bytes(props.bytesTotal)} ·{' '}
        {rate(props.rate)} · ETA {props.etaSeconds === undefined ? '–' : duration(props.etaSeconds)}
      </span>
    </div>
  );
}

/**
 * A task's bar: the live progress from the stream while it runs, the API's own figures once it
 * ended (a stream sends no progress after the end).
 */
export function TaskBar(props: { task: Task }) {
  const t = props.task;
  const ended = ENDED.includes(t.state);
  const live = ended ? undefined : progress.value.get(t.id);
  // Once ended, the rate is the task's average: bytes done over the time it ran.
  const ran = t.startedAt && t.endedAt ? (Date.parse(t.endedAt) - Date.parse(t.startedAt)) / 1000 : 0;
  const p = live ?? { ...t.progress, rate: ran > 0 ? t.progress.bytesDone / ran : undefined };
  return (
    <Bar
      label={`${t.kind} ${t.id} progress`}
      taskId={t.id}
      percent={t.state === 'succeeded' ? Math.max(p.percent, 100) : p.percent}
      bytesDone={p.bytesDone}
      bytesTotal={p.bytesTotal}
      rate={p.rate}
      etaSeconds={ended ? undefined : p.etaSeconds}
    />
  );
}

/** A table with a caption and column headers; its rows are the children. */
export function Table(props: { caption: string; columns: string[]; children: ComponentChildren }) {
  return (
    <table>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          {props.columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}

/** A table of tasks with their bars and states. */
export function TaskTable(props: { tasks: Task[]; caption: string }) {
  return (
    <Table caption={props.caption} columns={['Task', 'Kind', 'State', 'Progress', 'Created']}>
      {props.tasks.map((t) => (
        <tr key={t.id} data-task-row={t.id}>
          <td>
            <Link to={`/tasks/${t.id}`}>{t.id}</Link>
          </td>
          <td>{t.kind}</td>
          <td>
            <span class={`state state-${t.state}`} data-state>
              {t.state}
            </span>
            {t.error ? <span class="task-error"> {t.error.message}</span> : null}
          </td>
          <td>
            <TaskBar task={t} />
          </td>
          <td>{when(t.createdAt)}</td>
        </tr>
      ))}
    </Table>
  );
}

/** A time as the reader's locale writes it. */
export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '–';
}

/** What `read` returns, read again whenever `on` ticks (by default: the event stream reports a change) or `deps` change; `error` is the API's answer. */
export function useRead<T>(read: () => Promise<T>, deps: unknown[] = [], on: ReadonlySignal<number> = changes) {
  const [state, setState] = useState<{ data?: T; error?: unknown }>({});
  const tick = on.value;
  useEffect(() => {
    let live = true;
    read().then(
      (data) => live && setState({ data }),
      (error: unknown) => live && setState({ error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return state;
}

/** One resource, reloaded whenever the event stream reports a change; `error` is the API's answer (a 404 for what the token may not see). */
export function useResource<T>(path: string) {
  return useRead(() => api<T>('GET', path), [path]);
}

/** A button's call to the API: what it answered, or its error, and whether it is under way. */
export function useAction<A extends unknown[], T>(fn: (...args: A) => Promise<T>) {
  const [state, setState] = useState<{ busy: boolean; result?: T; error?: unknown }>({ busy: false });
  const run = useCallback(
    (...args: A) => {
      setState({ busy: true });
      fn(...args).then(
        (result) => setState({ busy: false, result }),
        (error: unknown) => setState({ busy: false, error }),
      );
    },
    [fn],
  );
  return { ...state, run };
}
