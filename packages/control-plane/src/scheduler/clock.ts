import fs from 'node:fs';

/** The scheduler's notion of now (epoch ms). Timers stay real; only what time it is can differ. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * TEST ONLY: now is whatever the file holds (epoch ms or an ISO 8601 time), read afresh each
 * time, so a test moves a real process's scheduler through days without sleeping. config.ts
 * accepts CAIRN_TEST_CLOCK_FILE only together with NODE_ENV=test.
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
