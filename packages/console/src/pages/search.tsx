import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { navigate, query } from '../router.js';
import { ErrorNote, Link, Pager, usePaged, useRead } from '../ui.js';
import { InstanceTable, type Instance } from './instances.js';
import { JobTable, type Job } from './jobs.js';

/** The longest search the API takes. */
const MAX = 100;
/** An id of ours: three letters, an underscore, 26 characters. */
const ID = /^[a-z]{3}_[0-9a-z]{26}$/;

/** The search box in the header: it goes to the search page with the text in `?q=`. */
export function SearchBox() {
  const [text, setText] = useState(query.value.get('q') ?? '');
  return (
    <form
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const q = text.trim();
        if (q) navigate(`/search?q=${encodeURIComponent(q)}`);
      }}
    >
      <label for="search">Search</label>
      <input
        id="search"
        type="search"
        maxLength={MAX}
        value={text}
        placeholder="name or id"
        onInput={(e) => setText(e.currentTarget.value)}
      />
      <button type="submit">Find</button>
    </form>
  );
}

/** A task or restore point by its id: a link to its page, or null when it is none the caller sees. */
async function byId(q: string): Promise<{ to: string; text: string } | null> {
  if (!ID.test(q) || !(q.startsWith('tsk_') || q.startsWith('bkp_'))) return null;
  // Read with the caller's token: another tenant's is the API's 404, no match, like an id that is not there.
  try {
    if (q.startsWith('tsk_')) {
      const task = await api<{ id: string; kind: string; state: string }>('GET', `/v1/tasks/${q}`);
      return { to: `/tasks/${task.id}`, text: `Task ${task.id} (${task.kind}, ${task.state})` };
    }
    const b = await api<{ id: string; instanceId: string }>('GET', `/v1/backups/${q}`);
    return { to: `/instances/${b.instanceId}`, text: `Restore point ${b.id} of instance ${b.instanceId}` };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** What one search found: its own state, so nothing of an earlier search shows while this one loads. */
function Found(props: { q: string }) {
  const q = props.q;
  const instances = usePaged<Instance>('/v1/instances', { q }, 20);
  const jobs = usePaged<Job>('/v1/backup-jobs', { q }, 20);
  const id = useRead(() => byId(q), [q]);
  const none = instances.items?.length === 0 && jobs.items?.length === 0 && id.data === null;
  return (
    <>
      <ErrorNote error={id.error} />
      {id.data ? (
        <>
          <h2>By id</h2>
          <p data-found={q}>
            <Link to={id.data.to}>{id.data.text}</Link>
          </p>
        </>
      ) : null}
      <h2>Instances</h2>
      <ErrorNote error={instances.error} />
      {instances.items && instances.items.length > 0 ? (
        <InstanceTable items={instances.items} caption={`Instances matching ${q}`} />
      ) : (
        <p>No instance matches.</p>
      )}
      <Pager label="Instances found" {...instances} />
      <h2>Backup jobs</h2>
      <ErrorNote error={jobs.error} />
      {jobs.items && jobs.items.length > 0 ? (
        <JobTable items={jobs.items} caption={`Backup jobs matching ${q}`} />
      ) : (
        <p>No backup job matches.</p>
      )}
      <Pager label="Backup jobs found" {...jobs} />
      {none ? <p data-nothing-found>Nothing you can see matches {q}.</p> : null}
    </>
  );
}

/** Instances and backup jobs whose name holds the text or whose id it is, and a task or restore point by its id. */
export function Search() {
  const q = (query.value.get('q') ?? '').trim().slice(0, MAX);
  return (
    <>
      <h1 tabIndex={-1}>{q ? `Search: ${q}` : 'Search'}</h1>
      {q ? <Found key={q} q={q} /> : <p>Type a part of a name, or an id, in the search box.</p>}
    </>
  );
}
