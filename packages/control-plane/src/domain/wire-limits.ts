/**
 * What the control plane accepts from an agent, checked where frames are turned into reports,
 * before anything reaches the store. Numbers out of range are protocol violations (the session
 * is closed, nothing is stored); text and JSON too large for their columns are cut visibly, so
 * one oversize report neither fails its batch nor differs between SQLite and MySQL (a MySQL
 * TEXT column holds 65,535 bytes, varchar(N) N characters; SQLite holds anything).
 */

const DAY_MS = 24 * 60 * 60_000;

export const WIRE_LIMITS = {
  /** A report's time may be this far ahead of the server's clock (agent clock skew). */
  clockAheadMs: DAY_MS,
  /** ...and this far behind it (a spool replayed after a long disconnection). */
  reportAgeMs: 366 * DAY_MS,
  /** Attempts and slots land in signed 32-bit INTEGER columns. */
  maxAttempt: 2 ** 31 - 1,
  maxSlots: 10_000,
  /** Free text (progress, event, rejection, error and drain messages), UTF-8 bytes. */
  textBytes: 8 * 1024,
  /** JSON an agent supplies (event data, task output), UTF-8 bytes, and its nesting depth. */
  jsonBytes: 60_000,
  jsonDepth: 64,
  /** Identifiers, in characters (the varchar sizes of their columns). */
  taskIdChars: 64,
  eventTypeChars: 100,
  codeChars: 100,
  externalIdChars: 255,
  agentVersionChars: 64,
  hostnameChars: 255,
  /** The plugin list of a hello (stored as JSON in a TEXT column). */
  plugins: 100,
  pluginNameChars: 214,
  pluginVersionChars: 64,
  capabilities: 32,
  capabilityChars: 64,
  runningTasks: 10_000,
  /** Reports in one ReportBatch frame: the protocol's MAX_REPORTS_PER_BATCH (agent.proto), which agents keep to. */
  reportsPerFrame: 64,
} as const;

/** A value from the wire that no correct agent sends; the session that sent it is closed. */
export class WireViolation extends Error {
  override readonly name = 'WireViolation';
}

function describe(value: number): string {
  return Number.isNaN(value) ? 'NaN' : String(value);
}

/** A spool sequence number: a positive safe integer. */
export function wireSeq(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new WireViolation(`spool_seq ${describe(value)} is not a positive integer below 2^53`);
  return value;
}

/** A task attempt: 1 up to the store's integer range. */
export function wireAttempt(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > WIRE_LIMITS.maxAttempt)
    throw new WireViolation(`attempt ${describe(value)} is not between 1 and ${WIRE_LIMITS.maxAttempt}`);
  return value;
}

/** A byte count: a non-negative safe integer. */
export function wireCount(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new WireViolation(`${field} ${describe(value)} is not a non-negative integer below 2^53`);
  return value;
}

export function wirePercent(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 100)
    throw new WireViolation(`percent ${describe(value)} is not between 0 and 100`);
  return value;
}

/**
 * An event time in epoch ms. 0 (the field left out) means "now"; anything else must lie within
 * the window around the server's clock, so every stored time renders as a date.
 */
export function wireTime(field: string, value: number, now: number): number {
  if (value === 0) return now;
  if (!Number.isSafeInteger(value) || value < 0)
    throw new WireViolation(`${field} ${describe(value)} is not a time in epoch milliseconds`);
  if (value > now + WIRE_LIMITS.clockAheadMs)
    throw new WireViolation(
      `${field} ${value} is more than ${WIRE_LIMITS.clockAheadMs / 3_600_000} h ahead of the control plane's clock (check the agent host's clock)`,
    );
  if (value < now - WIRE_LIMITS.reportAgeMs)
    throw new WireViolation(
      `${field} ${value} is more than ${WIRE_LIMITS.reportAgeMs / DAY_MS} days behind the control plane's clock`,
    );
  return value;
}

/** An identifier that must fit its column as sent: longer is a violation, never a silent cut. */
export function wireIdentifier(field: string, value: string, maxChars: number): string {
  if ([...value].length > maxChars)
    throw new WireViolation(`${field} is ${[...value].length} characters, the limit is ${maxChars}`);
  return value;
}

/** Index of the first byte of the UTF-8 character that holds byte `i` (never splits a character). */
function charStart(buf: Buffer, i: number): number {
  while (i > 0 && (buf[i]! & 0xc0) === 0x80) i--;
  return i;
}

/**
 * Free text cut to at most `maxBytes` UTF-8 bytes, with a suffix saying how much was cut.
 *
 * @example boundText('x'.repeat(70_000), 8192) // → 8,144 x's, then '… [61856 bytes cut]'
 */
export function boundText(text: string, maxBytes: number = WIRE_LIMITS.textBytes): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.byteLength <= maxBytes) return text;
  const reserve = 48; // room for the suffix below
  const keep = charStart(buf, maxBytes - reserve);
  return `${buf.subarray(0, keep).toString('utf8')}… [${buf.byteLength - keep} bytes cut]`;
}

/** Text cut to `maxChars` characters (for short labels such as error codes); no suffix. */
export function boundChars(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join('')}…`;
}

/** The deepest nesting of arrays and objects in a JSON text, without parsing it. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * Agent-supplied JSON as it is stored: null when empty; text that does not parse is kept as a
 * string value; JSON over the size or depth limit is replaced by a small note saying so.
 */
export function boundJson(
  field: string,
  text: string,
  maxBytes: number = WIRE_LIMITS.jsonBytes,
  maxDepth: number = WIRE_LIMITS.jsonDepth,
): string | null {
  if (!text) return null;
  const note = (reason: string) => JSON.stringify({ cairnTruncated: true, field, reason });
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) return note(`${field} was ${bytes} bytes; the limit is ${maxBytes}`);
  const depth = jsonDepth(text);
  if (depth > maxDepth) return note(`${field} was nested ${depth} deep; the limit is ${maxDepth}`);
  try {
    JSON.parse(text);
    return text;
  } catch {
    const wrapped = JSON.stringify({ unparsed: text });
    return Buffer.byteLength(wrapped, 'utf8') <= maxBytes
      ? wrapped
      : note(`${field} was not JSON, and quoted as a string it is over the ${maxBytes}-byte limit`);
  }
}
