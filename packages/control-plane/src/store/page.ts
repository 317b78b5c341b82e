import { sql, type ExpressionBuilder, type SqlBool } from 'kysely';
import { InputError } from '../domain/errors.js';
import type { Db } from './db.js';
import { throughIndex } from './dialect.js';
import type { Database } from './schema.js';

/*
 * The one paging rule of every list: `?limit=` 1-500 (default 50, checked by PageQuery), an
 * opaque `?cursor=` that only this API hands out (sealed to its list at the API edge, see
 * `api/paging.ts`), and `{items, nextCursor}`. Repositories page by
 * keyset (`where id > last`), never by offset, so a walk visits every row once even while rows
 * are added.
 */
export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A cursor this list did not hand out (made up, changed, or another list's). */
export const badCursor = () =>
  new InputError(
    'cursor is not valid',
    [{ path: 'query.cursor', message: 'not a cursor this list handed out' }],
    'bad_cursor',
  );

/** Cursors are opaque to clients: base64url of the last id (ours, or a row number) of the previous page. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z]{3}_[0-9a-z]{26}$|^\d{1,15}$/.test(id) || Buffer.from(id).toString('base64url') !== cursor) {
    throw badCursor();
  }
  return id;
}

/** A cursor over rows keyed by a name (zones: lowercase letters, digits and dashes). */
export function decodeNameCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name) || encodeNameCursor(name) !== cursor) throw badCursor();
  return name;
}

export function encodeNameCursor(name: string): string {
  return Buffer.from(name).toString('base64url');
}

/** A cursor over rows numbered by an integer id (progress reports). */
export function decodeSeqCursor(cursor: string | undefined): number | undefined {
  const id = decodeCursor(cursor);
  if (id === undefined) return undefined;
  if (!/^\d+$/.test(id)) throw badCursor();
  return Number(id);
}

/** `rows` holds up to `limit + 1` rows: the extra one only says that another page follows. */
export function pageOf<T extends { id: string | number }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor: rows.length > limit && last ? Buffer.from(String(last.id)).toString('base64url') : null,
  };
}

/**
 * How many rows, at most, one page of a list reads when a filter or search is not part of the
 * index the list is read through (tasks by state or kind, instances and jobs by name).
 */
export const SCANNED_ROWS = 2000;

/**
 * A page of a list filtered by something its index does not hold, read from at most
 * {@link SCANNED_ROWS} rows, so that no filter or search on a tenant's millions of rows costs a
 * read of all of them (on SQLite, on the thread every tenant's requests share). `stretch` answers
 * the ids {@link SCANNED_ROWS} and {@link SCANNED_ROWS} + 1 rows on from the cursor in the list's
 * order, unfiltered (one walk of the index: `offset SCANNED_ROWS - 1 limit 2`); `read` answers
 * the filtered rows (at most `limit` + 1) up to and including `farEnd`, or to the list's end when
 * it is undefined (fewer rows than that follow). A page that found `limit` is cut as any page
 * is; one that did not, short of the list's end, holds what it found (fewer than `limit`, maybe
 * none) and a cursor past `farEnd`: the walk goes on from there, visiting every row once.
 */
export async function scannedPage<T extends { id: string }>(
  limit: number,
  stretch: () => Promise<string[]>,
  read: (farEnd: string | undefined) => Promise<T[]>,
): Promise<Page<T>> {
  const ends = await stretch();
  const farEnd = ends.length === 2 ? ends[0] : undefined;
  const rows = await read(farEnd);
  if (rows.length > limit || farEnd === undefined) return pageOf(rows, limit);
  return { items: rows, nextCursor: Buffer.from(farEnd).toString('base64url') };
}

/**
 * The event log is the one list that grows at its end while read: its cursor is the id of the
 * last event seen (the same position `?after=` and the stream's Last-Event-ID take), and it is
 * handed out on every page that moved past `after` so a reader can come back for what follows:
 * every non-empty page, and an empty one that read a stretch of other tenants' events.
 */
export function decodeEventCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^\d{1,15}$/.test(cursor)) throw badCursor();
  return Number(cursor);
}

export function eventPageOf<T extends { id: number }>(read: { rows: T[]; through: number }, after: number): Page<T> {
  return { items: read.rows, nextCursor: read.through > after ? String(read.through) : null };
}

/**
 * A list's `?q=`: the rows whose `name` contains the text (ignoring case: ASCII letters on SQLite,
 * the collation's rule on MySQL/MariaDB), or whose `id` is the text. `%`, `_` and `!` in the text
 * are plain characters, never wildcards.
 */
export function nameOrId(q: string) {
  const pattern = `%${q.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
  return sql<SqlBool>`(lower(name) like ${pattern} escape '!' or id = ${q})`;
}

/** The searched lists' tables as the database names them, and their index by (tenant, id). */
const TENANT_INDEX = {
  instances: ['instances', 'instances_tenant'],
  backupJobs: ['backup_jobs', 'backup_jobs_tenant'],
} as const;

/**
 * A list searched by name (`?q=`, see {@link nameOrId}), of one tenant or of all, oldest first by
 * id; a search reads a bounded stretch a page ({@link scannedPage}): no index holds a part of a name.
 */
export async function searchedList<Row extends { id: string }>(
  db: Db,
  table: 'instances' | 'backupJobs',
  page: PageRequest,
  tenantId: string | undefined,
  search: string | undefined,
): Promise<Page<Row>> {
  // Both tables have the columns read here; Kysely types a query of one table, not of a choice.
  const from = table as 'instances';
  // A tenant's rows through its index (tenant_id, id), named for MySQL/MariaDB (see throughIndex).
  const [name, index] = TENANT_INDEX[table];
  const select = () => {
    const q = db.selectFrom(from);
    return tenantId !== undefined ? throughIndex(db, q, name, index) : q;
  };
  const after = decodeCursor(page.cursor);
  const walk = (eb: ExpressionBuilder<Database, 'instances'>) =>
    eb.and([
      ...(after ? [eb('id', '>', after)] : []),
      ...(tenantId !== undefined ? [eb('tenantId', '=', tenantId)] : []),
    ]);
  const read = async (farEnd?: string) => {
    let q = select()
      .selectAll()
      .where(walk)
      .orderBy('id')
      .limit(page.limit + 1);
    if (farEnd !== undefined) q = q.where('id', '<=', farEnd);
    if (search !== undefined) q = q.where(nameOrId(search));
    return (await q.execute()) as unknown as Row[];
  };
  if (search === undefined) return pageOf(await read(), page.limit);
  const stretch = async () =>
    (
      await select()
        .select('id')
        .where(walk)
        .orderBy('id')
        .offset(SCANNED_ROWS - 1)
        .limit(2)
        .execute()
    ).map((r) => r.id);
  return scannedPage(page.limit, stretch, read);
}
