// expect: no-restricted-syntax never `new Date()`
// A service that asks the machine what day it is instead of the clock it is handed; converting
// a time it was given (`new Date(ms)`, `Date.parse`) is fine.
export function stamp(ms: number): string[] {
  return [new Date().toISOString(), new Date(ms).toISOString(), String(Date.parse('2030-01-01'))];
}
