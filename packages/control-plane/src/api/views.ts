import type { Page } from '../store/page.js';

/*
 * What every resource's views share (each resource's own are in `routes/<resource>/views.ts`):
 * row → API shape, the bodies of docs/api.md. Times become RFC 3339 strings.
 */
const DAY_MS = 86_400_000;
/** 9999-12-31T23:59:59.999Z: up to it (from 1970 on) times are formatted here; any other goes through Date. */
const LAST_FAST_MS = 253_402_300_799_999;
const two = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** A time (ms since the epoch) as RFC 3339 in UTC, exactly as `Date.prototype.toISOString` writes it. */
export const iso = (ms: number): string => {
  if (!(Number.isInteger(ms) && ms >= 0 && ms <= LAST_FAST_MS)) return new Date(ms).toISOString();
  // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted): a list of 50
  // backups formats 100-200 times, and Date's own toISOString took three times as long.
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const ms3 = millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : `${millis}`;
  return `${year}-${two(month)}-${two(day)}T${two(hours)}:${two(minutes)}:${two(seconds)}.${ms3}Z`;
};
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** A page of rows as a page of their views: `{items, nextCursor}`. */
export const pageView = <T, V>(page: Pick<Page<T>, 'items' | 'nextCursor'>, view: (row: T) => V) => ({
  items: page.items.map((row) => view(row)),
  nextCursor: page.nextCursor,
});
