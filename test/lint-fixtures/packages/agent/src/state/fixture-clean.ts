// expect: clean
// state/ (and spool/) may import each other and the clock.
import { systemClock } from '../clock.js';
import { Spool } from '../spool/spool.js';
import { writeFileAtomicSync } from './atomic.js';

export const used = [systemClock, Spool, writeFileAtomicSync];
