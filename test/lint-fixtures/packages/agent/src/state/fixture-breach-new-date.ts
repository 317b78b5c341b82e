// expect: no-restricted-syntax never `new Date()`
// A file of the state directory dated by the machine's time instead of the agent's clock.
export function dated(message: string) {
  return { message, updatedAt: new Date().toISOString() };
}
