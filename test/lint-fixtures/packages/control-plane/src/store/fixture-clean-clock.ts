// expect: clean
// A repository is handed the one clock (a leaf it may import) and converts what it reads.
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';

export function stamped(clock: Clock = systemClock): string {
  return new Date(clock.now()).toISOString();
}
