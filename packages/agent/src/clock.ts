/**
 * The agent's one source of the time: every timestamp it writes (reports, journal, drain and
 * status files) and every deadline it keeps (shutdown flush, heartbeat silence, report pacing)
 * is read from the clock it was given, so a deadline is written and compared with the same
 * clock. Only `main.ts` (and tests) choose one; timers (setTimeout, setInterval) stay real.
 */
export interface Clock {
  /** Milliseconds since 1970-01-01T00:00:00Z. */
  now(): number;
}

/** The machine's clock. */
export const systemClock: Clock = { now: () => Date.now() };
