// expect: clean
// Tests may read the machine's time (they choose the clock they hand the agent).
export const startedAt = Date.now();
export const today = new Date();
