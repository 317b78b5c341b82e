import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorNote, Pager, useAction, usePaged, useResource, when } from '../ui.js';

export interface MaintenanceState {
  scope: 'global' | 'zone' | 'agent';
  enabled: boolean;
  message: string;
  runningBackups: number;
  ready: boolean;
  setAt: string | null;
  source?: string;
}

const put = (path: string, enabled: boolean, message: string) =>
  api<MaintenanceState>('PUT', path, message ? { enabled, message } : { enabled });

/** One scope's switch: its state (on, message, ready, backups still running) and a form to change it. */
function Switch(props: { path: string; label: string }) {
  const state = useResource<MaintenanceState>(props.path);
  const save = useAction(put);
  const [enabled, setEnabled] = useState(false);
  const [message, setMessage] = useState('');
  const s = save.result ?? state.data;
  useEffect(() => {
    if (!s) return;
    setEnabled(s.enabled);
    setMessage(s.enabled ? s.message : '');
  }, [s?.enabled, s?.message]);
  const id = props.path.replace(/[^\w]/g, '-');
  return (
    <form
      class="switch"
      aria-label={`Maintenance of ${props.label}`}
      onSubmit={(e) => {
        e.preventDefault();
        save.run(props.path, enabled, message.trim());
      }}
    >
      <ErrorNote error={state.error} />
      {s ? (
        <p data-maintenance-state>
          {s.enabled ? 'In maintenance' : 'Not in maintenance'}
          {s.enabled ? ` · ${s.ready ? 'ready' : 'not ready'} · ${s.runningBackups} backups running` : ''}
          {s.setAt ? ` · set ${when(s.setAt)}` : ''}
          {s.source === 'agent' ? ' · drained on the host' : ''}
        </p>
      ) : null}
      <label for={`${id}-on`}>
        <input
          id={`${id}-on`}
          type="checkbox"
          checked={enabled}
          onChange={(e) => setEnabled(e.currentTarget.checked)}
        />{' '}
        Maintenance on
      </label>
      <label for={`${id}-msg`}>Message</label>
      <input
        id={`${id}-msg`}
        value={message}
        onInput={(e) => setMessage(e.currentTarget.value)}
        placeholder="Service provider is currently undergoing scheduled maintenance."
      />
      <button type="submit" disabled={save.busy}>
        Save {props.label}
      </button>
      <ErrorNote error={save.error} />
    </form>
  );
}

export function Maintenance() {
  const zones = usePaged<{ zone: string }>('/v1/zones', {}, 10);
  const agents = usePaged<{ id: string; name: string; zone: string }>('/v1/agents', {}, 10);
  return (
    <>
      <h1 tabIndex={-1}>Maintenance</h1>
      <section aria-labelledby="global-h">
        <h2 id="global-h">Global</h2>
        <Switch path="/v1/maintenance" label="the whole service" />
      </section>
      <section aria-labelledby="zones-h">
        <h2 id="zones-h">Zones</h2>
        <ErrorNote error={zones.error} />
        {zones.items?.map((z) => (
          <div key={z.zone}>
            <h3>Zone {z.zone}</h3>
            <Switch path={`/v1/zones/${encodeURIComponent(z.zone)}/maintenance`} label={`zone ${z.zone}`} />
          </div>
        ))}
        <Pager label="Zones" {...zones} />
      </section>
      <section aria-labelledby="agents-h">
        <h2 id="agents-h">Agents</h2>
        <ErrorNote error={agents.error} />
        {agents.items?.map((a) => (
          <div key={a.id}>
            <h3>
              Agent {a.name} ({a.zone})
            </h3>
            <Switch path={`/v1/agents/${encodeURIComponent(a.id)}/maintenance`} label={`agent ${a.name}`} />
          </div>
        ))}
        <Pager label="Agents" {...agents} />
      </section>
    </>
  );
}
