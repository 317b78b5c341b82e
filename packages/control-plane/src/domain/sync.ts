/**
 * Provider sync: what the restore points a provider lists mean against the control plane's
 * records. Pure; the store feeds it the listing, the records of the provider and the instances
 * that may own a point, applies the answer and queues the deletes retention asks for.
 */
import { REPOSITORY_NOT_FOUND } from '@cairn/proto/vocabulary';
import { byKey } from './key-order.js';

/** One restore point as the provider listed it, checked. Times in epoch ms. */
export interface ListedPoint {
  externalId: string;
  createdAt: number;
  sizeBytes: number;
  locator: unknown;
  mode: 'FULL' | 'INCREMENT' | null;
  parentExternalId: string | null;
  expiresAt: number | null;
}

export const SYNC_LIMITS = {
  /** The varchar size of `backups.external_id`. */
  externalIdChars: 255,
  /** Ids kept per list of a drift report; the counts are always whole. */
  reportIds: 1000,
} as const;

export type Listing = { ok: true; points: ListedPoint[] } | { ok: false; reason: string };

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const NOT_JSON = Symbol('not JSON');

/** The value of a JSON text (null for none), or NOT_JSON. */
function jsonOf(text: string | null): unknown {
  try {
    return text === null ? null : JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/** An ISO time (or epoch ms) the store can keep, or undefined. */
function time(v: unknown): number | undefined {
  const t = typeof v === 'string' ? Date.parse(v) : typeof v === 'number' ? v : NaN;
  return Number.isSafeInteger(t) && t >= 0 ? t : undefined;
}

function externalId(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && [...v].length <= SYNC_LIMITS.externalIdChars ? v : undefined;
}

/**
 * The listing of a sync task's output (JSON as stored), or why it is unusable. One bad point
 * makes the whole listing unusable: a sync that half-understood its provider would mark the rest
 * as vanished. The output of an oversize listing is the store's truncation note, not a list. A
 * paged listing's output is its marker ({@link pagedListing}), read with {@link pagesComplete}.
 *
 * @example parseListing('[{"externalId":"p1","createdAt":"2026-01-01T00:00:00Z","sizeBytes":5}]')
 * // → { ok: true, points: [{ externalId: 'p1', createdAt: 1767225600000, sizeBytes: 5, locator: undefined, mode: null, parentExternalId: null, expiresAt: null }] }
 */
export function parseListing(output: string | null): Listing {
  const value = jsonOf(output);
  if (value === NOT_JSON) return { ok: false, reason: 'the listing is not JSON' };
  if (isObject(value) && value['cairnTruncated'] === true) {
    return { ok: false, reason: `the listing is too large to store: ${String(value['reason'])}` };
  }
  if (isObject(value) && typeof value['unparsed'] === 'string') return { ok: false, reason: 'the listing is not JSON' };
  if (!Array.isArray(value)) return { ok: false, reason: 'the listing is not an array of restore points' };
  return listedPoints(value);
}

/** The points of a listing (or of one page of it, numbered from `first`), or why one is unusable. */
function listedPoints(value: unknown[], first = 0): Listing {
  const points: ListedPoint[] = [];
  for (const [n, raw] of value.entries()) {
    const i = first + n;
    const bad = (field: string, want: string) => ({ ok: false as const, reason: `point ${i}: ${field} ${want}` });
    if (!isObject(raw)) return bad('', 'is not an object');
    const id = externalId(raw['externalId']);
    if (id === undefined)
      return bad('externalId', `must be a non-empty string of at most ${SYNC_LIMITS.externalIdChars} characters`);
    const createdAt = time(raw['createdAt']);
    if (createdAt === undefined) return bad('createdAt', 'must be an ISO 8601 time');
    const sizeBytes = raw['sizeBytes'];
    if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < 0)
      return bad('sizeBytes', 'must be a non-negative integer below 2^53');
    const mode = raw['mode'];
    if (mode !== undefined && mode !== null && mode !== 'FULL' && mode !== 'INCREMENT')
      return bad('mode', 'must be FULL or INCREMENT');
    const parent = raw['parentExternalId'];
    if (parent !== undefined && parent !== null && parent !== '' && externalId(parent) === undefined)
      return bad('parentExternalId', `must be a string of at most ${SYNC_LIMITS.externalIdChars} characters`);
    const expires = raw['expiresAt'];
    const expiresAt = expires === undefined || expires === null ? null : time(expires);
    if (expiresAt === undefined) return bad('expiresAt', 'must be an ISO 8601 time');
    points.push({
      externalId: id,
      createdAt,
      sizeBytes,
      locator: raw['locator'],
      mode: mode ?? null,
      parentExternalId: typeof parent === 'string' && parent !== '' ? parent : null,
      expiresAt,
    });
  }
  return { ok: true, points };
}

/** The most pages one paged listing may have (100 times the 100,000 points it was built for). */
export const MAX_SYNC_PAGES = 100_000;

/** The result of a paged sync: how many pages of its listing the agent sent, and how many points in all. */
export interface PagedListing {
  pages: number;
  points: number;
}

/**
 * The paged listing a sync's output announces (`{"cairnPages": n, "points": m}`), or undefined
 * when the output is anything else (a listing of its own, read with {@link parseListing}).
 *
 * @example pagedListing('{"cairnPages":3,"points":700}') // → { pages: 3, points: 700 }
 * @example pagedListing('[]') // → undefined
 */
export function pagedListing(output: string | null): PagedListing | undefined {
  if (output === null || !output.startsWith('{"cairnPages"')) return undefined;
  const value = jsonOf(output);
  if (!isObject(value)) return undefined;
  const pages = value['cairnPages'];
  const points = value['points'];
  const count = (v: unknown, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= max;
  if (!count(pages, MAX_SYNC_PAGES) || !count(points, Number.MAX_SAFE_INTEGER)) return undefined;
  return { pages: pages as number, points: points as number };
}

/** One page of a paged listing as the agent sent it (an event's data), checked. */
export type SyncPage =
  { ok: true; page: number; points: number; body: string; bad: string | null } | { ok: false; reason: string };

/**
 * A page event's data (`{"page": n, "points": [...]}`): its number, its points checked as a
 * listing's are, and their JSON to store. A page whose points are unusable is still a page (it
 * is stored with `bad`, so the result fails with the reason); data without a page number is not.
 *
 * @example readSyncPage('{"page":0,"points":[]}') // → { ok: true, page: 0, points: 0, body: '[]', bad: null }
 */
export function readSyncPage(data: string | null): SyncPage {
  const value = jsonOf(data);
  if (value === NOT_JSON) return { ok: false, reason: 'the page is not JSON' };
  if (!isObject(value)) return { ok: false, reason: 'the page is not an object' };
  const page = value['page'];
  if (typeof page !== 'number' || !Number.isSafeInteger(page) || page < 0 || page >= MAX_SYNC_PAGES)
    return { ok: false, reason: `the page number must be an integer from 0 to ${MAX_SYNC_PAGES - 1}` };
  const raw = value['points'];
  if (!Array.isArray(raw))
    return { ok: true, page, points: 0, body: '[]', bad: `page ${page}: points is not an array` };
  const listing = listedPoints(raw);
  const body = JSON.stringify(raw);
  if (!listing.ok) return { ok: true, page, points: raw.length, body: '[]', bad: `page ${page}: ${listing.reason}` };
  return { ok: true, page, points: raw.length, body, bad: null };
}

/** What the store holds of one attempt's pages when its result arrives. */
export interface StoredPages {
  /** Distinct page numbers stored, and the highest of them (-1: none). */
  pages: number;
  lastPage: number;
  /** Points on them, in all. */
  points: number;
  /** The first reason a stored page cannot be read, if one cannot. */
  bad: string | null;
}

/**
 * Why a paged listing cannot be compared with the records (undefined: it can): every page
 * 0..n-1 must be stored, readable, and hold the points the result counts. The agent sends the
 * pages before the result, in one spool order, so a page missing here never arrives later: the
 * listing ended early, and a listing that ended early marks nothing vanished.
 *
 * @example pagesComplete({ pages: 3, points: 700 }, { pages: 2, lastPage: 1, points: 500, bad: null })
 * // → 'the listing is incomplete: 2 of its 3 pages arrived'
 */
export function pagesComplete(paged: PagedListing, stored: StoredPages): string | undefined {
  if (stored.bad !== null) return stored.bad;
  if (stored.pages !== paged.pages || stored.lastPage !== paged.pages - 1)
    return `the listing is incomplete: ${stored.pages} of its ${paged.pages} pages arrived`;
  if (stored.points !== paged.points)
    return `the listing is incomplete: its pages hold ${stored.points} restore points, the result counts ${paged.points}`;
  return undefined;
}

/**
 * The points of one stored page (its body as {@link readSyncPage} kept it), numbered from
 * `first` in the listing's order, or why they cannot be read.
 */
export function storedPagePoints(body: string, first: number): Listing {
  const value = jsonOf(body);
  if (value === NOT_JSON) return { ok: false, reason: 'a stored page is not JSON' };
  return Array.isArray(value) ? listedPoints(value, first) : { ok: false, reason: 'a stored page is not an array' };
}

/** A record of one of the provider's restore points. */
export interface SyncedRecord {
  id: string;
  externalId: string;
  /** When the record was written (a backup's result, or an earlier sync). */
  createdAt: number;
  vanishedAt: number | null;
  /** A delete-backup task was asked for it (pending or failed). */
  deleteAsked: boolean;
}

/**
 * An instance that may own a listed point: in the provider's zone, its offering on this provider
 * connection (bound to it). An instance of another connection never does, even on a shared
 * repository: its own connection records, restores and deletes its points.
 */
export interface SyncInstance {
  id: string;
  /** A backup task of it is queued or running: an unrecorded point may be that task's. */
  busy: boolean;
}

export interface SyncInput {
  points: readonly ListedPoint[];
  records: readonly SyncedRecord[];
  instances: readonly SyncInstance[];
  /** When the listing was asked for: a record written since may be missing from it by timing alone. */
  listedAt: number;
  /**
   * External ids of points a delete of this connection was asked for that was still open when the
   * listing was asked for or ended since: the listing may still hold such a point although its
   * record is gone (deleted after the listing was taken), and it must not come back as adopted.
   */
  deletedSinceListed?: ReadonlySet<string>;
  /** The share of the live records one sync may mark vanished (see {@link holdsVanishing}), and whether an operator confirmed this sync past it. */
  vanishing: { share: number; confirmed: boolean };
}

export interface SyncPlan {
  /** Listed and recorded (record ids). */
  known: string[];
  /** Known records whose vanished mark goes: the point is back. */
  reappeared: string[];
  /** Listed, unrecorded, owned by an instance: records to create, oldest first (parents before children). */
  adopt: { point: ListedPoint; instanceId: string }[];
  /** Listed, owned by no instance (external ids). */
  orphaned: string[];
  /**
   * Listed, unrecorded, of an instance with a backup still running, or deleted since the listing
   * was asked for: left for the next sync.
   */
  deferred: string[];
  /** Recorded, not listed, no delete asked: marked (record ids; `newlyVanished` are the ones not marked before). */
  vanished: string[];
  newlyVanished: string[];
  /** Recorded, not listed, a delete was asked: the provider did what was asked; the record goes. */
  removed: string[];
  /**
   * Too many records would newly vanish at once: none is marked (they are in neither
   * `vanished` nor `newlyVanished`); `ids` would have been, of `of` live records.
   */
  held: { ids: string[]; of: number } | null;
}

/**
 * Whether a sync that would newly mark `vanishing` of a provider's `live` records vanished (live:
 * not marked yet, no delete asked) is held for an operator: more than `share` of them at once,
 * and more than one. An unmounted repository or a wrong listing looks like every point gone, and
 * marking them would refuse every restore; one point gone is the ordinary case. A share of 1
 * never holds (no sync marks more than all of them).
 *
 * @example holdsVanishing(10, 9, 0.5) // → true
 * @example holdsVanishing(2, 1, 0.5) // → false: a single point never holds
 */
export function holdsVanishing(live: number, vanishing: number, share: number): boolean {
  return vanishing > 1 && vanishing > live * share;
}

/**
 * Compares a listing with the records. Points are matched to records by external id, and an
 * unrecorded point only to the instance its provider-side tag names (`locator.instanceId`), if
 * that instance is bound to this connection. Never by an equal locator: a locator is what a
 * tenant writes, so matching on it let one tenant's instance claim another tenant's points in a
 * shared repository (and then delete them).
 */
export function planSync(input: SyncInput): SyncPlan {
  const plan: SyncPlan = {
    known: [],
    reappeared: [],
    adopt: [],
    orphaned: [],
    deferred: [],
    vanished: [],
    newlyVanished: [],
    removed: [],
    held: null,
  };
  const byExternal = new Map<string, SyncedRecord[]>();
  for (const r of input.records) byExternal.set(r.externalId, [...(byExternal.get(r.externalId) ?? []), r]);
  const byId = new Map(input.instances.map((i) => [i.id, i]));
  const owner = (locator: unknown): SyncInstance | undefined => {
    const named = isObject(locator) ? locator['instanceId'] : undefined;
    return typeof named === 'string' ? byId.get(named) : undefined;
  };

  const listed = new Set<string>();
  const ordered = [...input.points].sort((a, b) => a.createdAt - b.createdAt || byKey(a.externalId, b.externalId));
  for (const p of ordered) {
    // A provider listing a point twice describes one point.
    if (listed.has(p.externalId)) continue;
    listed.add(p.externalId);
    const recorded = byExternal.get(p.externalId);
    if (recorded) {
      for (const r of recorded) {
        plan.known.push(r.id);
        if (r.vanishedAt !== null) plan.reappeared.push(r.id);
      }
      continue;
    }
    const instance = owner(p.locator);
    if (!instance) plan.orphaned.push(p.externalId);
    else if (instance.busy || input.deletedSinceListed?.has(p.externalId)) plan.deferred.push(p.externalId);
    else plan.adopt.push({ point: p, instanceId: instance.id });
  }
  for (const r of input.records) {
    if (listed.has(r.externalId)) continue;
    if (r.deleteAsked) plan.removed.push(r.id);
    else if (r.createdAt < input.listedAt) {
      plan.vanished.push(r.id);
      if (r.vanishedAt === null) plan.newlyVanished.push(r.id);
    }
  }
  const live = input.records.filter((r) => r.vanishedAt === null && !r.deleteAsked).length;
  const { share, confirmed } = input.vanishing;
  if (!confirmed && holdsVanishing(live, plan.newlyVanished.length, share)) {
    const held = new Set(plan.newlyVanished);
    plan.held = { ids: plan.newlyVanished, of: live };
    plan.vanished = plan.vanished.filter((id) => !held.has(id));
    plan.newlyVanished = [];
  }
  return plan;
}

export interface DriftCounts {
  known: number;
  adopted: number;
  vanished: number;
  expired: number;
  orphaned: number;
  removed: number;
  deferred: number;
}

/** A sync held by {@link holdsVanishing}, as its drift report tells it. Times in epoch ms. */
export interface DriftHold {
  /** How many records it would have marked vanished, of how many live ones. */
  vanishing: number;
  of: number;
  /** When the syncs began to be held (the first of a run of held syncs). */
  since: number;
  /** The request that marks them vanished anyway. */
  confirm: string;
  /** Backup ids it would have marked. */
  ids: string[];
}

/** A sync of a connection with no repository yet (see {@link noRepositoryYet}), as its drift report tells it. */
export interface NoRepository {
  /** Why nothing was listed, and what to do. */
  message: string;
  /** The request that creates the repository. */
  initialise: string;
}

export interface DriftReport {
  counts: DriftCounts;
  adopted: string[];
  vanished: string[];
  expired: string[];
  orphaned: string[];
  removed: string[];
  /** Null unless the sync was held; a report stored before holds existed has none. */
  held?: DriftHold | null;
  /** Null unless the connection has no repository yet; a report stored before this existed has none. */
  noRepository?: NoRepository | null;
  /** Some list holds only its first `SYNC_LIMITS.reportIds` ids. */
  truncated: boolean;
}

/** The stored drift report of a sync: whole counts, lists capped. */
export function driftReport(lists: {
  known: readonly string[];
  adopted: readonly string[];
  vanished: readonly string[];
  expired: readonly string[];
  orphaned: readonly string[];
  removed: readonly string[];
  deferred: readonly string[];
  held: { ids: readonly string[]; of: number; since: number; confirm: string } | null;
  noRepository?: NoRepository | null;
}): DriftReport {
  const cap = (ids: readonly string[]) => ids.slice(0, SYNC_LIMITS.reportIds);
  const held = lists.held;
  const shown = [lists.adopted, lists.vanished, lists.expired, lists.orphaned, lists.removed, held?.ids ?? []];
  return {
    counts: {
      known: lists.known.length,
      adopted: lists.adopted.length,
      vanished: lists.vanished.length,
      expired: lists.expired.length,
      orphaned: lists.orphaned.length,
      removed: lists.removed.length,
      deferred: lists.deferred.length,
    },
    adopted: cap(lists.adopted),
    vanished: cap(lists.vanished),
    expired: cap(lists.expired),
    orphaned: cap(lists.orphaned),
    removed: cap(lists.removed),
    held: held && {
      vanishing: held.ids.length,
      of: held.of,
      since: held.since,
      confirm: held.confirm,
      ids: cap(held.ids),
    },
    noRepository: lists.noRepository ?? null,
    truncated: shown.some((l) => l.length > SYNC_LIMITS.reportIds),
  };
}

/** What the control plane knows, when a sync ends, of whether its connection ever reached a repository. */
export interface RepositoryHistory {
  /** The connection records a repository identity (a preflight or a task opened its repository). */
  identityRecorded: boolean;
  /** Any restore point is recorded through the connection (vanished or being deleted too). */
  recorded: boolean;
}

/**
 * Whether a sync that failed with `code` found that its connection has **no repository yet**:
 * the plugin found none (`REPOSITORY_NOT_FOUND`, and made none), and the connection never reached
 * one (no recorded identity, no record). Nothing can be listed and nothing can vanish, so the
 * sync is an empty listing that succeeds, its drift report saying so ({@link noRepositoryNote}).
 * Through a connection that did reach one, the same failure is a repository gone missing (a disk
 * that is not mounted): the sync fails, loudly, and marks nothing vanished.
 *
 * @example noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: false, recorded: false }) // → true
 * @example noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: true, recorded: false }) // → false: it was initialised
 * @example noRepositoryYet('REPOSITORY_NOT_FOUND', { identityRecorded: false, recorded: true }) // → false: points were made there
 */
export function noRepositoryYet(code: string, history: RepositoryHistory): boolean {
  return code === REPOSITORY_NOT_FOUND && !history.identityRecorded && !history.recorded;
}

/** The most of the plugin's own words a {@link NoRepository} message quotes. */
const PLUGIN_WORDS = 500;

/**
 * The drift report's account of a sync with no repository yet: why nothing was listed, quoting
 * the plugin (`said`), and the request that creates the repository.
 */
export function noRepositoryNote(zone: string, providerId: string, said: string): NoRepository {
  const initialise = `POST /v1/zones/${zone}/providers/${providerId}/preflight {"initialise": true}`;
  const words = said.length > PLUGIN_WORDS ? `${said.slice(0, PLUGIN_WORDS)}…` : said;
  return {
    message: `no repository yet: this connection has never reached one (no repository identity, no restore points), so there is nothing to list. Create it with ${initialise}; if it lives on a disk that is not mounted, mount it instead. The plugin said: ${words}`,
    initialise,
  };
}

/** The instant an interval of `intervalMs` containing `now` begins (intervals count from the epoch). */
export function intervalStart(now: number, intervalMs: number): number {
  return Math.floor(now / intervalMs) * intervalMs;
}
