import { ErrorNote, Pager, Table, usePaged } from '../ui.js';

interface Agent {
  id: string;
  name: string;
  zone: string;
  state: string;
  slots: number;
  runningTasks: number;
  plugins: { name: string; version: string }[];
  maintenance: { enabled: boolean; message: string; source?: string } | null;
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
        <Table caption="Agents" columns={['Name', 'Zone', 'State', 'Slots in use', 'Plugins', 'Maintenance']}>
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
                {a.maintenance?.enabled
                  ? `${a.maintenance.source === 'agent' ? 'drained on the host' : 'on'}: ${a.maintenance.message}`
                  : 'off'}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      <Pager label="Agents" {...list} />
    </>
  );
}
