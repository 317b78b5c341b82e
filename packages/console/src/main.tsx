import { render } from 'preact';
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, storedToken, storeToken, type Page } from './api.js';
import { connected, follow, maintenanceChanges } from './live.js';
import { Agents } from './pages/agents.js';
import { Events } from './pages/events.js';
import { Home } from './pages/home.js';
import { InstancePage } from './pages/instance.js';
import { Instances } from './pages/instances.js';
import { JobPage, Jobs } from './pages/jobs.js';
import { Maintenance, type MaintenanceState } from './pages/maintenance.js';
import { TaskPage } from './pages/task.js';
import { match, navigate, route } from './router.js';
import { Search, SearchBox } from './pages/search.js';
import { ErrorNote, Link, useRead } from './ui.js';
import './style.css';

/** Whether the token is the service provider's: shown SP pages only when the API lets it list agents. */
const isSp = signal(false);
const loggedIn = signal(storedToken() !== null);

function logout(): void {
  storeToken(null);
  loggedIn.value = false;
  isSp.value = false;
}

function Login() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <main class="login">
      <h1>Cairn console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          storeToken(token.trim());
          // Any call proves the token; GET /v1/maintenance is open to every role.
          api('GET', '/v1/maintenance').then(
            () => {
              loggedIn.value = true;
            },
            (err: unknown) => {
              storeToken(null);
              setError(err);
            },
          );
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <button type="submit">Log in</button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}

/** A maintenance window in force, as the banner says it. */
interface Window {
  key: string;
  where: string;
  message: string;
}

/** How many zones and agents the banner looks at (their first page): a window beyond is on the SP's Maintenance page. */
const BANNER_SCOPES = 100;

/**
 * Every maintenance window the token can see in force: the global one, those of the zones the
 * token sees (a tenant: where it has an offering), and for the SP those of its agents (set
 * through the API or drained on the host). Each a call of the API the token may make.
 */
async function windows(sp: boolean): Promise<Window[]> {
  const found: Window[] = [];
  const global = await api<MaintenanceState>('GET', '/v1/maintenance');
  if (global.enabled) found.push({ key: 'global', where: '', message: global.message });
  const zones = await api<Page<{ zone: string }>>('GET', `/v1/zones?limit=${BANNER_SCOPES}`);
  const states = await Promise.all(
    zones.items.map((z) => api<MaintenanceState>('GET', `/v1/zones/${encodeURIComponent(z.zone)}/maintenance`)),
  );
  zones.items.forEach((z, i) => {
    if (states[i]?.enabled)
      found.push({ key: `zone:${z.zone}`, where: ` in zone ${z.zone}`, message: states[i].message });
  });
  if (sp) {
    const agents = await api<
      Page<{ id: string; name: string; maintenance: { enabled: boolean; message: string } | null }>
    >('GET', `/v1/agents?limit=${BANNER_SCOPES}`);
    for (const a of agents.items)
      if (a.maintenance?.enabled)
        found.push({ key: `agent:${a.id}`, where: ` on agent ${a.name}`, message: a.maintenance.message });
  }
  return found;
}

/** The maintenance windows in force, on every page, reloaded when the stream says one changed. */
function Banner() {
  const sp = isSp.value;
  const state = useRead(() => windows(sp), [sp], maintenanceChanges);
  return (
    <div role="status" aria-live="polite">
      {state.data?.map((w) => (
        <p class="banner" data-banner={w.key} key={w.key}>
          <strong>Maintenance{w.where}:</strong> {w.message}
        </p>
      ))}
    </div>
  );
}

function Page() {
  const path = route.value;
  let m: Record<string, string> | undefined;
  if (path === '/') return <Home />;
  if (path === '/instances') return <Instances />;
  if (path === '/search') return <Search />;
  if ((m = match('/instances/:id', path))) return <InstancePage id={m['id']!} />;
  if ((m = match('/tasks/:id', path))) return <TaskPage id={m['id']!} />;
  if (path === '/jobs') return <Jobs />;
  if (path === '/events') return <Events isSp={isSp.value} />;
  if ((m = match('/jobs/:id', path))) return <JobPage id={m['id']!} />;
  if (path === '/agents' && isSp.value) return <Agents />;
  if (path === '/maintenance' && isSp.value) return <Maintenance />;
  return (
    <>
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        Nothing here. <Link to="/">Home</Link>
      </p>
    </>
  );
}

function Shell() {
  useEffect(() => {
    const abort = new AbortController();
    void follow(abort.signal, logout);
    api('GET', '/v1/agents?limit=1').then(
      () => {
        isSp.value = true;
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 401) logout();
      },
    );
    return () => abort.abort();
  }, []);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <nav aria-label="Console">
          <Link to="/">Home</Link>
          <Link to="/instances">Instances</Link>
          <Link to="/jobs">Jobs</Link>
          <Link to="/events">Events</Link>
          {isSp.value ? <Link to="/agents">Agents</Link> : null}
          {isSp.value ? <Link to="/maintenance">Maintenance</Link> : null}
        </nav>
        <SearchBox />
        <span class="live" data-live={connected.value}>
          {connected.value ? 'Live' : 'Not live: reconnecting…'}
        </span>
        <button
          type="button"
          onClick={() => {
            logout();
            navigate('/');
          }}
        >
          Log out
        </button>
      </header>
      <Banner />
      <main id="main">
        <Page />
      </main>
    </>
  );
}

function App() {
  return loggedIn.value ? <Shell /> : <Login />;
}

render(<App />, document.getElementById('app')!);
