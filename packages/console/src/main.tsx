import { render } from 'preact';
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, storedToken, storeToken } from './api.js';
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
import { ErrorNote, Link } from './ui.js';
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

/** The global maintenance window's message, on every page, reloaded when the stream says it changed. */
function Banner() {
  const [state, setState] = useState<MaintenanceState>();
  const tick = maintenanceChanges.value;
  useEffect(() => {
    api<MaintenanceState>('GET', '/v1/maintenance').then(setState, () => undefined);
  }, [tick]);
  return (
    <div role="status" aria-live="polite">
      {state?.enabled ? (
        <p class="banner" data-banner>
          <strong>Maintenance:</strong> {state.message}
        </p>
      ) : null}
    </div>
  );
}

function Page() {
  const path = route.value;
  let m: Record<string, string> | undefined;
  if (path === '/') return <Home />;
  if (path === '/instances') return <Instances />;
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
