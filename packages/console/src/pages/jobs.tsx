import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { duration } from '../format.js';
import { progress } from '../live.js';
import { Bar, ErrorNote, Link, Pager, Table, useAction, usePaged, useResource, when } from '../ui.js';

type SetName = 'outdated' | 'ongoing' | 'updated' | 'error';

export interface Job {
  id: string;
  name: string;
  instanceIds: string[];
  mode: string;
  priority: number;
  execution: 'SEQUENTIAL' | 'PARALLEL';
  locked: boolean;
  schedules: { id: string; cron: string; timezone: string; nextRunAt: string | null }[];
  sets: Record<SetName, string[]>;
  lastRun: { startedAt: string; durationSeconds: number; state?: string } | null;
}

interface Run {
  id: string;
  trigger: string;
  state: string;
  startedAt: string;
  durationSeconds: number;
  memberCounts: Record<'total' | SetName, number>;
}

interface Member {
  instanceId: string;
  set: 'OUTDATED' | 'ONGOING' | 'UPDATED' | 'ERROR';
  taskId: string | null;
  error: { code: string; message: string } | null;
}

const SETS: SetName[] = ['outdated', 'ongoing', 'updated', 'error'];

/**
 * A member's progress: live from the stream while its backup runs (0 until the first report),
 * full once UPDATED; none before it starts or after an error (its message instead).
 */
function MemberProgress(props: { member: Member }) {
  const m = props.member;
  if (m.set === 'ERROR')
    return <span class="task-error">{m.error ? `${m.error.code}: ${m.error.message}` : 'error'}</span>;
  if (!m.taskId || m.set === 'OUTDATED') return <span>not started</span>;
  const live = progress.value.get(m.taskId);
  const done = m.set === 'UPDATED';
  return (
    <Bar
      label={`${m.instanceId} progress`}
      taskId={m.taskId}
      percent={done ? 100 : (live?.percent ?? 0)}
      bytesDone={done ? (live?.bytesTotal ?? NaN) : (live?.bytesDone ?? 0)}
      bytesTotal={live?.bytesTotal ?? NaN}
      rate={done ? undefined : live?.rate}
      etaSeconds={done ? undefined : (live?.etaSeconds ?? null)}
    />
  );
}

/** A run's members in the job's order, paged, each with its set and live progress. */
function Members(props: { path: string; run: Run }) {
  const members = usePaged<Member>(`${props.path}/runs/${encodeURIComponent(props.run.id)}/members`, {}, 20);
  return (
    <>
      <ErrorNote error={members.error} />
      {members.items && members.items.length > 0 ? (
        <Table
          caption={`Members of the run started ${when(props.run.startedAt)} (${props.run.state}), in the job's order`}
          columns={['Instance', 'Set', 'Progress', 'Task']}
        >
          {members.items.map((m) => (
            <tr key={m.instanceId} data-member={m.instanceId} data-member-set={m.set}>
              <td>
                <Link to={`/instances/${m.instanceId}`}>{m.instanceId}</Link>
              </td>
              <td>{m.set}</td>
              <td>
                <MemberProgress member={m} />
              </td>
              <td>{m.taskId ? <Link to={`/tasks/${m.taskId}`}>{m.taskId}</Link> : '–'}</td>
            </tr>
          ))}
        </Table>
      ) : null}
      <Pager label="Members" {...members} />
    </>
  );
}

/** A page of backup jobs as a table, each name linked to its page. */
export function JobTable(props: { items: Job[]; caption: string }) {
  return (
    <Table caption={props.caption} columns={['Name', 'Priority', 'Execution', 'Instances', 'Last run']}>
      {props.items.map((j) => (
        <tr key={j.id}>
          <td>
            <Link to={`/jobs/${j.id}`}>{j.name}</Link>
            {j.locked ? ' (locked)' : ''}
          </td>
          <td>{j.priority}</td>
          <td>{j.execution}</td>
          <td>{j.instanceIds.length}</td>
          <td>{j.lastRun ? `${when(j.lastRun.startedAt)}, ${duration(j.lastRun.durationSeconds)}` : 'never'}</td>
        </tr>
      ))}
    </Table>
  );
}

export function Jobs() {
  const list = usePaged<Job>('/v1/backup-jobs');
  return (
    <>
      <h1 tabIndex={-1}>Backup jobs</h1>
      <ErrorNote error={list.error} />
      {list.items && list.items.length === 0 ? <p>No backup job yet.</p> : null}
      {list.items && list.items.length > 0 ? <JobTable items={list.items} caption="Backup jobs" /> : null}
      <Pager label="Backup jobs" {...list} />
    </>
  );
}

const operate = (jobId: string, op: string) => api<Job>('POST', `/v1/backup-jobs/${jobId}/${op}`);

export function JobPage(props: { id: string }) {
  const path = `/v1/backup-jobs/${encodeURIComponent(props.id)}`;
  const job = useResource<Job>(path);
  const runs = usePaged<Run>(`${path}/runs`, {}, 10);
  const action = useAction(operate);
  // The run whose members are shown: the one picked, else the newest.
  const [picked, setPicked] = useState<string>();
  const shownRun = runs.items?.find((r) => r.id === picked) ?? runs.items?.[0];
  if (job.error)
    return (
      <>
        <h1 tabIndex={-1}>Backup job</h1>
        <ErrorNote error={job.error} />
      </>
    );
  const j = job.data;
  if (!j) return <p>Loading…</p>;
  return (
    <>
      <h1 tabIndex={-1}>Backup job {j.name}</h1>
      <p>
        {j.execution} · priority {j.priority} · {j.mode} · {j.instanceIds.length} instances
        {j.locked ? ' · locked' : ''}
      </p>
      <div class="actions">
        {['run', 'cancel', 'retry', j.locked ? 'unlock' : 'lock'].map((op) => (
          <button key={op} type="button" disabled={action.busy} onClick={() => action.run(j.id, op)}>
            {op[0]!.toUpperCase() + op.slice(1)}
          </button>
        ))}
      </div>
      <ErrorNote error={action.error} />
      <section aria-labelledby="sets-h">
        <h2 id="sets-h">Sets of the last run</h2>
        <div class="sets">
          {SETS.map((set) => (
            <div key={set} class={`set set-${set}`}>
              <h3>
                {set.toUpperCase()} ({j.sets[set].length})
              </h3>
              <ol data-set={set}>
                {j.sets[set].map((id) => (
                  <li key={id}>
                    <Link to={`/instances/${id}`}>{id}</Link>
                  </li>
                ))}
              </ol>
            </div>
          ))}
        </div>
      </section>
      <section aria-labelledby="schedules-h">
        <h2 id="schedules-h">Schedules</h2>
        {j.schedules.length === 0 ? <p>No schedule: it runs when asked.</p> : null}
        <ul>
          {j.schedules.map((s) => (
            <li key={s.id}>
              <code>{s.cron}</code> ({s.timezone}), next {when(s.nextRunAt)}
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="members-h">
        <h2 id="members-h">Members and their progress</h2>
        {shownRun ? <Members path={path} run={shownRun} /> : <p>No run yet.</p>}
      </section>
      <section aria-labelledby="runs-h">
        <h2 id="runs-h">Runs</h2>
        <ErrorNote error={runs.error} />
        {runs.items && runs.items.length > 0 ? (
          <Table
            caption="Runs, newest first"
            columns={['Started', 'Trigger', 'State', 'Duration', 'Updated / error / total', 'Members']}
          >
            {runs.items.map((r) => (
              <tr key={r.id} data-run={r.id}>
                <td>{when(r.startedAt)}</td>
                <td>{r.trigger}</td>
                <td>{r.state}</td>
                <td>{duration(r.durationSeconds)}</td>
                <td>
                  {r.memberCounts.updated} / {r.memberCounts.error} / {r.memberCounts.total}
                </td>
                <td>
                  <button
                    type="button"
                    aria-pressed={r.id === shownRun?.id}
                    onClick={() => setPicked(r.id)}
                    aria-label={`Show the members of the run started ${when(r.startedAt)}`}
                  >
                    Show
                  </button>
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        <Pager label="Runs" {...runs} />
      </section>
    </>
  );
}
