// expect: clean
// The time read from the clock the agent was given; a Date made from it, or parsed, is fine.
import type { Clock } from './clock.js';

export function stamp(clock: Clock, taskId: string) {
  const atMs = clock.now();
  return { taskId, atMs, at: new Date(atMs).toISOString(), epoch: Date.parse('2027-01-01T00:00:00Z') };
}
