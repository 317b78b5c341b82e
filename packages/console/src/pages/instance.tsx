import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { bytes } from '../format.js';
import { ErrorNote, Pager, Table, TaskTable, useAction, usePaged, useResource, when, type Task } from '../ui.js';
import type { Instance } from './instances.js';

interface Backup {
  id: string;
  name: string;
  mode: 'FULL' | 'INCREMENT';
  createdAt: string;
  sizeBytes: number;
  parentId: string | null;
}

const startBackup = (instanceId: string) => api<Task>('POST', `/v1/instances/${instanceId}/backups`);
const restore = (backupId: string, targetPath?: string) =>
  api<Task>('POST', `/v1/backups/${backupId}/restore`, targetPath ? { targetPath } : undefined);

/** A restore point's restore buttons: in place, or to a path on the agent's host. */
function RestoreControls(props: { backup: Backup }) {
  const [path, setPath] = useState('');
  const action = useAction(restore);
  const id = props.backup.id;
  return (
    <div class="restore">
      <button type="button" onClick={() => action.run(id)} disabled={action.busy}>
        Restore {props.backup.name} in place
      </button>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          action.run(id, path.trim());
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
      {action.result ? <p role="status">Restore task {action.result.id} started.</p> : null}
      <ErrorNote error={action.error} />
    </div>
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
                  <RestoreControls backup={b} />
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
