// expect: no-restricted-syntax the time is read through the injected Clock (clock.ts), never Date.now()
// expect: no-restricted-syntax routes run no SQL: no sql`` templates
// The routes' own block keeps the clock rule beside its SQL ban (a later block replaces the rule's options).
export function handler(sql: (s: TemplateStringsArray) => unknown) {
  return [Date.now(), sql`select 1`];
}
