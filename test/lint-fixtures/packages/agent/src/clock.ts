// expect: import-x/no-restricted-paths clock.ts is a leaf
// The clock is what every part of the agent imports: importing any of them back would tie it into
// their cycles. It is also the one agent file that reads the machine's time (no other message).
import { Spool } from './spool/spool.js';

export const used = Spool;
export const systemClock = { now: () => Date.now() };
