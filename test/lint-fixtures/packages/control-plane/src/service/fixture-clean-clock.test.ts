// expect: clean
// Tests may read the real time (they are not product code).
export const started = [Date.now(), new Date()];
