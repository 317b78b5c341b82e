import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readJsonSync, writeFileAtomicSync } from './atomic.js';

/** Name of the credential file inside the state directory. */
export const CREDENTIAL_FILE = 'agent.json';

const credentialSchema = z.object({
  server: z.url({ protocol: /^https?$/ }),
  agentId: z.string().min(1),
  credential: z.string().min(1),
  zone: z.string().min(1),
  name: z.string(),
  /** How the server proves who it is over https/wss, as the operator chose at enrollment. */
  serverTrust: z
    .union([
      z.strictObject({ ca: z.string().includes('-----BEGIN CERTIFICATE-----') }),
      z.strictObject({ fingerprint: z.string().regex(/^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/) }),
    ])
    .optional(),
});

/** What enrollment gave this agent: who it is and how to reach its control plane. */
export type AgentCredential = z.infer<typeof credentialSchema>;

/** Raised when the state directory holds no usable credential. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

export function credentialPath(stateDir: string): string {
  return path.join(stateDir, CREDENTIAL_FILE);
}

/**
 * Reads `<stateDir>/agent.json`; `undefined` when the agent was never enrolled there.
 * Throws {@link CredentialError} when the file exists but is not a valid credential.
 */
export function readCredential(stateDir: string): AgentCredential | undefined {
  const file = credentialPath(stateDir);
  let raw: unknown;
  try {
    raw = readJsonSync(file);
  } catch (err) {
    throw new CredentialError(`${file} cannot be read: ${(err as Error).message}`);
  }
  if (raw === undefined) return undefined;
  const parsed = credentialSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CredentialError(
      `${file} is not a valid agent credential: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}`,
    );
  }
  return parsed.data;
}

/** Writes the credential atomically, readable by the owner only (it is a bearer secret). */
export function writeCredential(stateDir: string, credential: AgentCredential): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomicSync(credentialPath(stateDir), `${JSON.stringify(credential, null, 2)}\n`, 0o600);
}
