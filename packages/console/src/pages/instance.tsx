import { useState } from 'preact/hooks';
import { api, ApiError, readPages, type Page } from '../api.js';
import { bytes, type ScheduledJob } from '../format.js';
import { changes } from '../live.js';
import {
  ErrorNote,
  Link,
  Pager,
  Table,
  TaskTable,
  useAction,
  usePaged,
  useRead,
  useResource,
  when,
  type Task,
} from '../ui.js';
import type { Instance } from './instances.js';

interface Offering {
  id: string;
  name: string;
  zone: string;
  description: string | null;
  allowAdhoc: boolean;
  allowUserSchedules: boolean;
  sla: { cron: string; timezone?: string; keepLast: number; rpoMinutes?: number } | null;
}

interface OwnSchedule {
  cron: string;
  timezone: string;
  keepLast: number;
  nextRunAt: string | null;
}

/** How many job pages (100 a page) the instance page looks through for the jobs that hold it. */
const JOB_PAGES = 5;
/** How many instances the restore-volume target list offers (the first page of the zone's). */
const TARGETS = 100;

interface Backup {
  id: string;
  name: string;
  mode: 'FULL' | 'INCREMENT';
  createdAt: string;
  sizeBytes: number;
  parentId: string | null;
}

const startBackup = (instanceId: string) => api<Task>('POST', `/v1/instances/${instanceId}/backups`);
const restore = (backupId: string, target?: { targetPath: string } | { targetNamespace: string }) =>
  api<Task>('POST', `/v1/backups/${backupId}/restore`, target);

const restoreVolume = (backupId: string, volume: string, targetInstanceId: string) =>
  api<Task>('POST', `/v1/backups/${backupId}/restore-volume`, { volume, targetInstanceId });

/**
 * A restore point's restore buttons: in place, to a path on the agent's host, into another
 * Kubernetes namespace (an instance whose locator names one: the CSI provider; the API lets only
 * an sp-admin name it), or one volume onto another instance.
 */
function RestoreControls(props: { backup: Backup; targets: Instance[]; namespaced: boolean }) {
  const [path, setPath] = useState('');
  const [namespace, setNamespace] = useState('');
  const [volume, setVolume] = useState('');
  const [target, setTarget] = useState('');
  const action = useAction(restore);
  const volumeAction = useAction(restoreVolume);
  const id = props.backup.id;
  return (
    <div class="restore">
      <button type="button" onClick={() => action.run(id)} disabled={action.busy}>
        Restore {props.backup.name} in place
      </button>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          action.run(id, { targetPath: path.trim() });
        }}
      >
        <label>
          Target path
          <input value={path} onInput={(e) => setPath(e.currentTarget.value)} required placeholder="/restore/here" />
        </label>
        <button type="submit" disabled={action.busy}>
          Restore to path
        </button>
      </form>
      {props.namespaced ? (
        <form
          aria-label={`Restore ${props.backup.name} into a namespace`}
          onSubmit={(e) => {
            e.preventDefault();
            action.run(id, { targetNamespace: namespace.trim() });
          }}
        >
          <label>
            Target namespace
            <input
              value={namespace}
              onInput={(e) => setNamespace(e.currentTarget.value)}
              required
              placeholder="shop-copy"
            />
          </label>
          <button type="submit" disabled={action.busy}>
            Restore into namespace
          </button>
        </form>
      ) : null}
      {action.result ? <p role="status">Restore task {action.result.id} started.</p> : null}
      <ErrorNote error={action.error} />
      <form
        aria-label={`Restore a volume of ${props.backup.name}`}
        onSubmit={(e) => {
          e.preventDefault();
          volumeAction.run(id, volume.trim(), target);
        }}
      >
        <label>
          Volume
          <input value={volume} onInput={(e) => setVolume(e.currentTarget.value)} required placeholder="disk-1" />
        </label>
        <label>
          Onto instance
          <select value={target} onChange={(e) => setTarget(e.currentTarget.value)} required>
            <option value="">Choose…</option>
            {props.targets.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={volumeAction.busy}>
          Restore volume
        </button>
      </form>
      {volumeAction.result ? <p role="status">Restore-volume task {volumeAction.result.id} started.</p> : null}
      <ErrorNote error={volumeAction.error} />
    </div>
  );
}

const setSchedule = (instanceId: string, body: { cron: string; timezone: string; keepLast: number } | null) =>
  body === null
    ? api<null>('DELETE', `/v1/instances/${encodeURIComponent(instanceId)}/schedule`)
    : api<OwnSchedule>('PUT', `/v1/instances/${encodeURIComponent(instanceId)}/schedule`, body);

/** Sets, replaces or removes the instance's own schedule; a refusal (a cron too frequent, a bad field) shows the API's words. */
function ScheduleForm(props: { instanceId: string; current: OwnSchedule | null; changed: () => void }) {
  const [cron, setCron] = useState(props.current?.cron ?? '');
  const [timezone, setTimezone] = useState(props.current?.timezone ?? 'UTC');
  const [keepLast, setKeepLast] = useState(String(props.current?.keepLast ?? 7));
  const save = useAction(async (body: Parameters<typeof setSchedule>[1]) => {
    await setSchedule(props.instanceId, body);
    props.changed();
  });
  return (
    <form
      aria-label="Own schedule"
      onSubmit={(e) => {
        e.preventDefault();
        save.run({ cron: cron.trim(), timezone: timezone.trim(), keepLast: Number(keepLast) });
      }}
    >
      <label>
        Cron
        <input value={cron} onInput={(e) => setCron(e.currentTarget.value)} required placeholder="0 3 * * *" />
      </label>
      <label>
        Time zone
        <input value={timezone} onInput={(e) => setTimezone(e.currentTarget.value)} required />
      </label>
      <label>
        Keep last
        <input type="number" min={1} value={keepLast} onInput={(e) => setKeepLast(e.currentTarget.value)} required />
      </label>
      <button type="submit" disabled={save.busy}>
        Save schedule
      </button>
      {props.current ? (
        <button type="button" disabled={save.busy} onClick={() => save.run(null)}>
          Remove schedule
        </button>
      ) : null}
      <ErrorNote error={save.error} />
    </form>
  );
}

/** How many offerings the assign list offers (the first page of those the token sees). */
const OFFERINGS = 100;

const putOffering = (instanceId: string, offeringId: string | null) =>
  offeringId === null
    ? api<null>('DELETE', `/v1/instances/${encodeURIComponent(instanceId)}/offering`)
    : api<unknown>('PUT', `/v1/instances/${encodeURIComponent(instanceId)}/offering`, { offeringId });

/** Assigns one of the offerings of the instance's zone, or removes the one it has; a refusal shows the API's words. */
function OfferingForm(props: { instance: Instance }) {
  const i = props.instance;
  const offerings = useRead(
    async () =>
      (await api<Page<Offering>>('GET', `/v1/offerings?limit=${OFFERINGS}`)).items.filter((o) => o.zone === i.zone),
    [i.zone],
  );
  const [chosen, setChosen] = useState('');
  const save = useAction(async (offeringId: string | null) => {
    await putOffering(i.id, offeringId);
    // The page reloads what it shows, as after an event of the stream.
    changes.value++;
  });
  return (
    <form
      aria-label="Offering"
      onSubmit={(e) => {
        e.preventDefault();
        save.run(chosen);
      }}
    >
      <label>
        Offering to assign
        <select value={chosen} onChange={(e) => setChosen(e.currentTarget.value)} required>
          <option value="">Choose…</option>
          {(offerings.data ?? [])
            .filter((o) => o.id !== i.offeringId)
            .map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
        </select>
      </label>
      <button type="submit" disabled={save.busy}>
        Assign offering
      </button>
      {i.offeringId ? (
        <button type="button" disabled={save.busy} onClick={() => save.run(null)}>
          Remove offering
        </button>
      ) : null}
      <ErrorNote error={offerings.error} />
      <ErrorNote error={save.error} />
    </form>
  );
}

/** The instance's offering (its policy and SLA), its own schedule, and the backup jobs that hold it with their next runs. */
function Protection(props: { instance: Instance }) {
  const i = props.instance;
  const offering = useRead(
    () =>
      i.offeringId ? api<Offering>('GET', `/v1/offerings/${encodeURIComponent(i.offeringId)}`) : Promise.resolve(null),
    [i.offeringId],
  );
  // Bumped when this page changed the schedule (the API records no event for it).
  const [version, setVersion] = useState(0);
  // The instance's own schedule: the API's 404 means it has none.
  const own = useRead(
    () =>
      api<OwnSchedule>('GET', `/v1/instances/${encodeURIComponent(i.id)}/schedule`).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [i.id, version],
  );
  const jobs = useRead(async () => {
    const read = await readPages<ScheduledJob & { instanceIds: string[] }>('/v1/backup-jobs', {
      limit: 100,
      maxPages: JOB_PAGES,
    });
    return { items: read.items.filter((j) => j.instanceIds.includes(i.id)), partial: read.partial };
  }, [i.id]);
  const o = offering.data;
  return (
    <section aria-labelledby="protection-h">
      <h2 id="protection-h">Offering and schedules</h2>
      <ErrorNote error={offering.error} />
      {offering.data === null ? <p>No offering: this instance is not protected.</p> : null}
      <OfferingForm instance={i} />
      {o ? (
        <dl class="facts" data-offering={o.id}>
          <dt>Offering</dt>
          <dd>
            {o.name}
            {o.description ? ` (${o.description})` : ''}
          </dd>
          <dt>Backups by hand</dt>
          <dd>{o.allowAdhoc ? 'allowed' : 'not allowed'}</dd>
          <dt>Own schedules</dt>
          <dd>{o.allowUserSchedules ? 'allowed' : 'not allowed'}</dd>
          <dt>SLA</dt>
          <dd data-sla>
            {o.sla ? (
              <>
                <code>{o.sla.cron}</code> {o.sla.timezone ?? 'UTC'}, keeps the last {o.sla.keepLast}
                {o.sla.rpoMinutes ? `, RPO ${o.sla.rpoMinutes} min` : ''}
              </>
            ) : (
              'none'
            )}
          </dd>
        </dl>
      ) : null}
      <ErrorNote error={own.error} />
      {own.data === null ? <p>No schedule of its own.</p> : null}
      {own.data ? (
        <p data-own-schedule>
          Own schedule: <code>{own.data.cron}</code> {own.data.timezone}, keeps the last {own.data.keepLast}, next run{' '}
          <time dateTime={own.data.nextRunAt ?? undefined}>{when(own.data.nextRunAt)}</time>
        </p>
      ) : null}
      {o?.allowUserSchedules && own.data !== undefined ? (
        <ScheduleForm instanceId={i.id} current={own.data} changed={() => setVersion((v) => v + 1)} />
      ) : null}
      {i.schedule ? (
        <p>
          Schedule run by the provider: {i.schedule.state} (task{' '}
          <Link to={`/tasks/${i.schedule.taskId}`}>{i.schedule.taskId}</Link>)
        </p>
      ) : null}
      <ErrorNote error={jobs.error} />
      {jobs.data && jobs.data.items.length === 0 ? <p>No backup job holds it.</p> : null}
      {jobs.data && jobs.data.items.length > 0 ? (
        <Table caption={`Backup jobs that hold ${i.name}`} columns={['Job', 'Schedules and next runs']}>
          {jobs.data.items.map((j) => (
            <tr key={j.id} data-instance-job={j.id}>
              <td>
                <Link to={`/jobs/${j.id}`}>{j.name}</Link>
              </td>
              <td>
                {j.schedules.length === 0 ? 'run by hand only' : null}
                {j.schedules.map((s) => (
                  <span key={s.id} class="schedule">
                    <code>{s.cron}</code> {s.timezone}: next{' '}
                    {s.nextRunAt ? <time dateTime={s.nextRunAt}>{when(s.nextRunAt)}</time> : 'none (ended)'}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      {jobs.data?.partial ? <p>Looked through the first {JOB_PAGES * 100} backup jobs only.</p> : null}
    </section>
  );
}

export function InstancePage(props: { id: string }) {
  const instance = useResource<Instance>(`/v1/instances/${encodeURIComponent(props.id)}`);
  if (instance.error)
    return (
      <>
        <h1 tabIndex={-1}>Instance</h1>
        <ErrorNote error={instance.error} />
      </>
    );
  if (!instance.data) return <p>Loading…</p>;
  return <InstanceView instance={instance.data} />;
}

function InstanceView(props: { instance: Instance }) {
  const i = props.instance;
  const backups = usePaged<Backup>('/v1/backups', { instanceId: i.id });
  const tasks = usePaged<Task>('/v1/tasks', { instanceId: i.id }, 10);
  const backup = useAction(startBackup);
  const names = new Map((backups.items ?? []).map((b) => [b.id, b.name]));
  const namespaced = typeof i.locator === 'object' && i.locator !== null && 'namespace' in i.locator;
  // Where one volume may go: the tenant's other instances of the same zone (the first page of them).
  const targets = useRead(
    async () =>
      (await api<Page<Instance>>('GET', `/v1/instances?limit=${TARGETS}`)).items.filter(
        (t) => t.id !== i.id && t.tenantId === i.tenantId && t.zone === i.zone,
      ),
    [i.id],
  );
  return (
    <>
      <h1 tabIndex={-1}>Instance {i.name}</h1>
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{i.id}</code>
        </dd>
        <dt>Zone</dt>
        <dd>{i.zone}</dd>
        <dt>Offering</dt>
        <dd>{i.offeringId ?? 'none'}</dd>
        <dt>Agent</dt>
        <dd>{i.agentId ?? 'any of the zone'}</dd>
      </dl>
      <p>
        <button type="button" onClick={() => backup.run(i.id)} disabled={backup.busy}>
          Back up now
        </button>
      </p>
      {backup.result ? <p role="status">Backup task {backup.result.id} started.</p> : null}
      <ErrorNote error={backup.error} />
      <Protection instance={i} />
      <section aria-labelledby="tasks-h">
        <h2 id="tasks-h">Tasks</h2>
        <ErrorNote error={tasks.error} />
        {tasks.items && tasks.items.length === 0 ? <p>No task yet.</p> : null}
        {tasks.items && tasks.items.length > 0 ? (
          <TaskTable tasks={tasks.items} caption={`Tasks of ${i.name}, newest first`} />
        ) : null}
        <Pager label="Tasks" {...tasks} />
      </section>
      <section aria-labelledby="points-h">
        <h2 id="points-h">Restore points</h2>
        <ErrorNote error={backups.error} />
        {backups.items && backups.items.length === 0 ? <p>No restore point yet.</p> : null}
        {backups.items && backups.items.length > 0 ? (
          <Table
            caption={`Restore points of ${i.name}`}
            columns={['Name', 'Taken', 'Mode', 'Size', 'Chain', 'Restore']}
          >
            {backups.items.map((b) => (
              <tr key={b.id} data-backup={b.id}>
                <td>{b.name}</td>
                <td>{when(b.createdAt)}</td>
                <td>{b.mode}</td>
                <td>{bytes(b.sizeBytes)}</td>
                <td>{b.parentId ? `after ${names.get(b.parentId) ?? b.parentId}` : 'full, starts a chain'}</td>
                <td>
                  <RestoreControls backup={b} targets={targets.data ?? []} namespaced={namespaced} />
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
        <Pager label="Restore points" {...backups} />
      </section>
    </>
  );
}
