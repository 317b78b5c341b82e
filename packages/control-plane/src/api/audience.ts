import { isSpAdmin, type Principal } from '../domain/access.js';
import { endpointParts, redactText } from '../domain/endpoint.js';

/**
 * Who an answer is shown to. A tenant sees what is its own and nothing of how the service
 * provider runs the service: no SP token id (who set a maintenance window), and no provider
 * connection's endpoint (a repository's URL, user, host or path) in what a plugin or agent said:
 * task errors, progress and output, events, job run outcomes and an upstream failure's detail
 * read `<repository>` there. An sp-admin sees everything as it was said.
 */
export interface Audience {
  spAdmin: boolean;
  /** Equal for audiences that read every text alike (to share what is made for one). */
  key: string;
  /** A text as this audience may read it. */
  text(s: string): string;
  /** A JSON value with every string in it as this audience may read it. */
  json(v: unknown): unknown;
}

const SP_ADMIN: Audience = { spAdmin: true, key: 'sp-admin', text: (s) => s, json: (v) => v };

function tenantAudience(parts: readonly string[]): Audience {
  const text = (s: string) => redactText(s, parts);
  const json = (v: unknown): unknown => {
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map(json);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, json(x)]));
    return v;
  };
  return { spAdmin: false, key: `tenant\0${parts.join('\0')}`, text, json };
}

/**
 * Builds the audience of a request from its principal. A tenant's audience reads the SP's endpoints as
 * they are now (one small query), not from a cache: a connection created or changed a moment ago
 * is hidden from the first text that names it, on every replica.
 */
export class Audiences {
  constructor(private readonly endpoints: () => Promise<string[]>) {}

  async of(p: Principal | undefined): Promise<Audience> {
    if (p !== undefined && isSpAdmin(p)) return SP_ADMIN;
    const all = await this.endpoints();
    return tenantAudience([...new Set(all.flatMap(endpointParts))].sort((a, b) => b.length - a.length));
  }
}
