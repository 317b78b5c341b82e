/** The directives of a Content-Security-Policy header and their sources (`default-src` → [`'self'`]). */
export const cspDirectives = (csp: string): Map<string, string[]> =>
  new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
