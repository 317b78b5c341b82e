import fs from 'node:fs';

/**
 * What time it is (epoch ms), for the whole control plane: every time it stores, compares with a
 * stored time, or fires a schedule by. server.ts makes one and hands it to every repository,
 * service, the dispatcher, the lifecycle and the scheduler; nothing else reads the time (lint).
 * Timers stay real (setTimeout, setInterval), and so does elapsed time: rates, throttles and how
 * long a request waits count with `elapsedMs()`, which a test's clock never freezes or stretches.
 * The one other clock server.ts hands on is the hosts' real time (`wireClock`, the system clock):
 * agents' own times are judged by it and task leases count by it.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Real elapsed milliseconds from an arbitrary origin (monotonic): for durations only, never stored. */
export const elapsedMs = (): number => performance.now();

/**
 * TEST ONLY: now is whatever the file holds (epoch ms or an ISO 8601 time), read afresh each
 * time, so a test moves a real process through days without sleeping. config.ts accepts
 * CAIRN_TEST_CLOCK_FILE only together with NODE_ENV=test.
 */
export function fileClock(file: string): Clock {
  return {
    now() {
      const text = fs.readFileSync(file, 'utf8').trim();
      const t = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
      if (!Number.isFinite(t)) throw new Error(`test clock file ${file} holds no time: "${text.slice(0, 40)}"`);
      return t;
    },
  };
}
