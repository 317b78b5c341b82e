import { signal } from '@preact/signals';

/** Where the console lives: every client route is under it, and the server answers index.html for each. */
export const BASE = '/ui';

/** The current path below BASE (`/`, `/instances/ins_…`). */
export const route = signal(here());

function here(): string {
  const p = location.pathname;
  const rest = p.startsWith(BASE) ? p.slice(BASE.length) : p;
  return rest === '' ? '/' : rest;
}

/** The current query string's parameters (`/search?q=…`). */
export const query = signal(new URLSearchParams(location.search));

addEventListener('popstate', () => {
  route.value = here();
  query.value = new URLSearchParams(location.search);
});

/** Goes to a client route (with a query string, if any) without reloading. */
export function navigate(to: string): void {
  history.pushState(null, '', BASE + to);
  const at = to.indexOf('?');
  route.value = at < 0 ? to : to.slice(0, at);
  query.value = new URLSearchParams(at < 0 ? '' : to.slice(at));
  // Focus moves to the new page's heading, as a screen reader user expects after a page change.
  queueMicrotask(() => document.querySelector<HTMLElement>('main h1')?.focus());
}

/** Matches `pattern` (`/instances/:id`) against `path`: the params, or undefined. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    const p = a[i]!;
    const v = b[i]!;
    if (p.startsWith(':')) {
      if (!v) return undefined;
      params[p.slice(1)] = decodeURIComponent(v);
    } else if (p !== v) return undefined;
  }
  return params;
}
