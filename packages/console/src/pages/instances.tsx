import { ErrorNote, Link, Pager, Table, usePaged } from '../ui.js';

export interface Instance {
  id: string;
  tenantId: string;
  name: string;
  zone: string;
  agentId: string | null;
  offeringId: string | null;
  /** Where the plugin finds it: `{namespace, selector?}` for a Kubernetes namespace (CSI). */
  locator?: unknown;
  /** A schedule the provider runs itself (see the API's provider-side schedules), or null. */
  schedule: { owner: string | null; state: string; taskId: string } | null;
}

/** A page of instances as a table, each name linked to its page. */
export function InstanceTable(props: { items: Instance[]; caption: string }) {
  return (
    <Table caption={props.caption} columns={['Name', 'Zone', 'Offering', 'Id']}>
      {props.items.map((i) => (
        <tr key={i.id}>
          <td>
            <Link to={`/instances/${i.id}`}>{i.name}</Link>
          </td>
          <td>{i.zone}</td>
          <td>{i.offeringId ?? 'none'}</td>
          <td>
            <code>{i.id}</code>
          </td>
        </tr>
      ))}
    </Table>
  );
}

export function Instances() {
  const list = usePaged<Instance>('/v1/instances');
  return (
    <>
      <h1 tabIndex={-1}>Instances</h1>
      <ErrorNote error={list.error} />
      {list.items && list.items.length === 0 ? <p>No instance yet.</p> : null}
      {list.items && list.items.length > 0 ? <InstanceTable items={list.items} caption="Protected resources" /> : null}
      <Pager label="Instances" {...list} />
    </>
  );
}
