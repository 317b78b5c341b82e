import type { Page } from '../store/page.js';

/*
 * What every resource's views share (each resource's own are in `routes/<resource>/views.ts`):
 * row → API shape, the bodies of docs/api.md. Times become RFC 3339 strings.
 */
export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** A page of rows as a page of their views: `{items, nextCursor}`. */
export const pageView = <T, V>(page: Pick<Page<T>, 'items' | 'nextCursor'>, view: (row: T) => V) => ({
  items: page.items.map((row) => view(row)),
  nextCursor: page.nextCursor,
});
