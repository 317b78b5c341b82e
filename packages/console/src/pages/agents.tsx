import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorNote, Pager, Table, useAction, usePaged } from '../ui.js';
import type { MaintenanceState } from './maintenance.js';

interface Agent {
  id: string;
  name: string;
  zone: string;
  state: string;
  slots: number;
  runningTasks: number;
  plugins: { name: string; version: string }[];
  maintenance: { enabled: boolean; message: string; source: 'api' | 'agent' } | null;
}

const drain = (id: string, enabled: boolean, message: string) =>
  api<MaintenanceState>(
    'PUT',
    `/v1/agents/${encodeURIComponent(id)}/maintenance`,
    message ? { enabled, message } : { enabled },
  );

/** What an agent's drain is: off, set through the API, or set on its host (which only the host undoes). */
function drainText(m: Agent['maintenance']): string {
  if (!m?.enabled) return 'not drained';
  return `${m.source === 'agent' ? 'drained on the host' : 'drained through the API'}: ${m.message}`;
}

/** Drain (with a message) or undrain one agent through PUT /v1/agents/{id}/maintenance; a refusal shows the API's words. */
function DrainForm(props: { agent: Agent }) {
  const a = props.agent;
  const [message, setMessage] = useState('');
  const save = useAction(drain);
  const id = `drain-${a.id}`;
  return (
    <form
      class="drain"
      aria-label={`Drain agent ${a.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        save.run(a.id, true, message.trim());
      }}
    >
      <label for={id}>Message</label>
      <input
        id={id}
        value={message}
        onInput={(e) => setMessage(e.currentTarget.value)}
        placeholder="Service provider is currently undergoing scheduled maintenance."
      />
      <button type="submit" disabled={save.busy}>
        Drain {a.name}
      </button>
      <button type="button" disabled={save.busy} onClick={() => save.run(a.id, false, '')}>
        Undrain {a.name}
      </button>
      {a.maintenance?.enabled && a.maintenance.source === 'agent' ? (
        <span class="hint">Set on its host: undone there with cairn-agent undrain.</span>
      ) : null}
      <ErrorNote error={save.error} />
    </form>
  );
}

/** The service provider's agents: state, zone, slots in use, plugins, and a drain with its source and message. */
export function Agents() {
  const list = usePaged<Agent>('/v1/agents');
  return (
    <>
      <h1 tabIndex={-1}>Agents</h1>
      <ErrorNote error={list.error} />
      {list.items && list.items.length === 0 ? <p>No agent enrolled.</p> : null}
      {list.items && list.items.length > 0 ? (
        <Table caption="Agents" columns={['Name', 'Zone', 'State', 'Slots in use', 'Plugins', 'Drain']}>
          {list.items.map((a) => (
            <tr key={a.id} data-agent={a.id}>
              <td>{a.name}</td>
              <td>{a.zone}</td>
              <td>{a.state}</td>
              <td>
                {a.runningTasks} of {a.slots}
              </td>
              <td>{a.plugins.map((p) => `${p.name} ${p.version}`).join(', ')}</td>
              <td>
                <p data-drain>{drainText(a.maintenance)}</p>
                <DrainForm agent={a} />
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      <Pager label="Agents" {...list} />
    </>
  );
}
